/**
 * Hostile input against the controller's HTTP server running in a process of its own (test/server/child-server.ts),
 * over real sockets, at every log level: malformed HTTP framing, hostile headers, hostile bodies, signed but
 * hostile payloads. After each batch the process must still be alive, /healthz must answer, and a real signed
 * workflow_job must still be accepted. The slow-client storm with its memory figures is in slow-clients.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { COUNTED_EVENTS } from '../../src/server/webhook-route.js';
import { rawExchange, startChildServer } from './child.js';
import type { ChildServer } from './child.js';
import { SECRET, signedHeaders, workflowJobPayload } from './helpers.js';
import { MALFORMED_FRAMING, fuzzDelivery, runFuzz, sendHostilePayloads } from './hostile-inputs.js';

/** Deliveries of the random fuzz at each level (10,000 more at debug level run in fuzz.test.ts). */
const FUZZ_RUNS = 300;

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;

async function acceptsRealWebhook(url: string): Promise<void> {
  const body = JSON.stringify(workflowJobPayload({ jobId: Math.floor(Math.random() * 1e9) + 1 }));
  const res = await fetch(`${url}/webhook`, { method: 'POST', body, headers: await signedHeaders(body) });
  expect(res.status, await res.text()).toBe(202);
}

async function alive(server: ChildServer): Promise<void> {
  expect(server.exitCode(), server.stderr()).toBeNull();
  const health = await fetch(`${server.url}/healthz`);
  expect(health.status).toBe(200);
}

describe.each(LEVELS)('hostile HTTP at log level %s', (level) => {
  let dir: string;
  let server: ChildServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rf-hostile-'));
    server = await startChildServer(level, join(dir, 'server.log'));
  }, 90_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers malformed framing with a 4xx or a close, and stays alive', async () => {
    const statuses: Record<string, number | null> = {};
    for (const { name, bytes } of MALFORMED_FRAMING) {
      const result = await rawExchange(server.port, bytes, 15_000);
      statuses[name] = result.status;
      expect(result.closedByServer, `${name}: the server closes the connection`).toBe(true);
      if (result.status !== null) {
        expect(result.status, name).toBeGreaterThanOrEqual(400);
        expect(result.status, name).toBeLessThan(500);
      }
    }
    expect(statuses['a 20 KB header']).toBe(431);
    expect(statuses['a header line without a colon']).toBe(400);
    await alive(server);
    await acceptsRealWebhook(server.url);
    expect(readFileSync(join(dir, 'server.log'), 'utf8')).not.toContain(SECRET);
  }, 120_000);

  it('answers signed but hostile payloads with 400/413/422 and a message, and stays alive', async () => {
    for (const result of await sendHostilePayloads(server.url)) {
      expect(result.status, result.name).toBe(result.expected);
      if (result.expected >= 400) expect(result.message, result.name).toMatch(/\w/);
    }
    // 300 distinct signed event names: one `other` series, not 300.
    for (let i = 0; i < 300; i++) {
      const body = '{}';
      const res = await fetch(`${server.url}/webhook`, {
        method: 'POST',
        body,
        headers: await signedHeaders(body, `custom_event_${i}`),
      });
      expect(res.status).toBe(202);
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const events = new Set(
      [...metrics.matchAll(/runner_fleet_webhooks_total\{[^}]*event="([^"]*)"/g)].map((m) => m[1]!),
    );
    for (const event of events) expect([...COUNTED_EVENTS, 'other', 'unverified']).toContain(event);
    expect(events).toContain('other');
    // Strict parsers can read every API answer.
    const jobs = await fetch(`${server.url}/api/v1/jobs`);
    expect(jobs.headers.get('x-content-type-options')).toBe('nosniff');
    expect(jobs.headers.get('cache-control')).toBe('no-store');
    new TextDecoder('utf-8', { fatal: true }).decode(await jobs.arrayBuffer());
    await alive(server);
    await acceptsRealWebhook(server.url);
  }, 120_000);

  it(`answers ${FUZZ_RUNS} random deliveries with the rule's status, never a 5xx`, async () => {
    const samples = fc.sample(fuzzDelivery, { numRuns: FUZZ_RUNS, seed: 4242 + LEVELS.indexOf(level) });
    const { statuses, violations } = await runFuzz(server.url, samples);
    expect(violations.slice(0, 5)).toEqual([]);
    expect(Object.values(statuses).reduce((a, b) => a + b, 0)).toBeGreaterThan(FUZZ_RUNS * 0.9);
    await alive(server);
    await acceptsRealWebhook(server.url);
  }, 120_000);
});
