/**
 * No secret of a demo run reaches the dashboard, its assets, the API, the live streams, /metrics or the log: the
 * App private key, the PAT, the webhook secret, and every installation token, registration token and JIT config
 * the simulator (GitHub) handed out, collected from the simulator's record of its REST exchanges.
 */
import { readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { demoControllerFactory, fileLogger } from '../../src/demo/controller.js';
import { readSse } from '../../src/dashboard/dashboard.test-helpers.js';
import { runDemo } from '../../src/demo/run-demo.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { assertBuilt } from './helpers.js';

interface Seen {
  readonly what: string;
  readonly text: string;
}

/** Secret values handed out in the simulator's REST responses, by kind. */
function issuedSecrets(sim: Simulator): Map<string, string[]> {
  const found = new Map<string, string[]>([
    ['installation token', []],
    ['registration token', []],
    ['JIT config', []],
    ['JIT config part', []],
  ]);
  for (const exchange of sim.recordedExchanges()) {
    if (!exchange.responseBody || exchange.status >= 300) continue;
    const body = JSON.parse(exchange.responseBody) as Record<string, unknown>;
    const url = exchange.url;
    if (url.includes('/access_tokens') && typeof body.token === 'string')
      found.get('installation token')!.push(body.token);
    if (url.endsWith('/registration-token') && typeof body.token === 'string')
      found.get('registration token')!.push(body.token);
    if (typeof body.encoded_jit_config === 'string') {
      found.get('JIT config')!.push(body.encoded_jit_config);
      const files = JSON.parse(Buffer.from(body.encoded_jit_config, 'base64').toString('utf8')) as Record<
        string,
        string
      >;
      for (const key of ['.credentials', '.credentials_rsaparams']) {
        if (files[key]) found.get('JIT config part')!.push(files[key]);
      }
    }
  }
  return found;
}

describe('secrets in a demo run', () => {
  it('none reaches the page, the API, the streams, /metrics or the log', async () => {
    assertBuilt();
    let sim: Simulator | null = null;
    const seen: Seen[] = [];
    const stopStreams = new AbortController();
    const streams: Promise<void>[] = [];
    let logFile = '';
    const get = async (url: string, what: string) => {
      const response = await fetch(url);
      expect(response.status, what).toBe(200);
      seen.push({ what, text: await response.text() });
    };

    const result = await runDemo({
      jobs: 40,
      durationMs: 6_000,
      port: 0,
      controllerFactory: demoControllerFactory({ PATH: process.env.PATH }),
      createLogger: fileLogger,
      keepFiles: true,
      simulatorOptions: { recordExchanges: true },
      onParts: ({ simulator }) => {
        sim = simulator;
      },
      onReady: ({ url, logFile: file }) => {
        logFile = file;
        for (const path of ['/dashboard/v1/stream', '/api/v1/stream']) {
          streams.push(
            readSse(`${url}${path}`, {
              until: () => false,
              timeoutMs: 120_000,
              signal: stopStreams.signal,
            }).then(({ raw }) => void seen.push({ what: path, text: raw })),
          );
        }
      },
      keepUntil: async ({ url }) => {
        await get(`${url}/`, 'page');
        for (const asset of ['dashboard.js', 'dashboard.css', 'favicon.svg'])
          await get(`${url}/assets/${asset}`, asset);
        await get(`${url}/dashboard/v1/snapshot`, 'snapshot');
        await get(`${url}/api/v1/scale-sets`, 'scale-sets');
        await get(`${url}/api/v1/runners`, 'runners');
        await get(`${url}/api/v1/jobs?completedLimit=5000`, 'jobs');
        await get(`${url}/api/v1/events?limit=5000`, 'events');
        await get(`${url}/metrics`, 'metrics');
        stopStreams.abort();
        await Promise.all(streams);
      },
    });
    try {
      expect(result.summary.ok, result.summary.problems.join('\n')).toBe(true);
      seen.push({ what: 'controller log', text: readFileSync(logFile, 'utf8') });
      // The streams carried the run: snapshots on one, runner and job events on the other.
      expect(seen.find((s) => s.what === '/dashboard/v1/stream')!.text).toContain('event: snapshot');
      expect(seen.find((s) => s.what === '/api/v1/stream')!.text).toContain('event: runner');

      const s = sim as unknown as Simulator;
      const secrets = issuedSecrets(s);
      // The run really handed out each kind of secret, so finding none in the outputs means something.
      for (const [kind, values] of secrets) expect(values.length, kind).toBeGreaterThan(0);
      const pemLines = s.privateKeyPem.split('\n').filter((line) => line.length >= 40);
      secrets.set('App private key', pemLines);
      secrets.set('PAT', [s.token]);
      secrets.set('webhook secret', [s.webhookSecret]);
      for (const { what, text } of seen) {
        expect(text.length, what).toBeGreaterThan(0);
        for (const [kind, values] of secrets) {
          for (const value of values) {
            if (text.includes(value)) throw new Error(`${kind} found in ${what}`);
          }
        }
      }
    } finally {
      if (result.dir) rmSync(result.dir, { recursive: true, force: true });
    }
  }, 120_000);
});
