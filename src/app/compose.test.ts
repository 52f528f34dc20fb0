/**
 * The controller's stop is bounded whatever a provider does: against the simulator, with its `sim` provider wrapped
 * so that, on demand, listing instances hangs without heeding its abort signal and closing never ends. The stop
 * then abandons that work at its deadline and says so; it never waits for it. And what /readyz and /healthz are
 * told while the controller starts, runs and stops. And that its log lines name each field once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetConfig } from '../core/fleet-config.js';
import type { Provider, ProviderFactory } from '../providers/provider.js';
import { createSimProviderFactory } from '../providers/sim/index.js';
import type { Simulator } from '../sim/github/index.js';
import { startSimulator } from '../sim/github/index.js';
import { composeController } from './compose.js';

let sim: Simulator;
let dir: string;

beforeAll(async () => {
  sim = await startSimulator({ orgs: ['octo-org'] });
  dir = mkdtempSync(join(tmpdir(), 'rf-compose-'));
});
afterAll(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

function fleet(name: string): FleetConfig {
  return {
    name,
    github: { url: sim.baseUrl, apiUrl: sim.apiUrl, ghes: false, auth: { token: sim.token } },
    webhook: { secret: sim.webhookSecret },
    server: { host: '127.0.0.1', port: 0 },
    store: { path: join(dir, `${name}.db`) },
    controller: { resyncInterval: 500, orphanGracePeriod: 60_000, failureBackoff: 1_000, concurrency: 32 },
    scaleSets: [
      {
        name: 'cloud',
        scope: { org: 'octo-org' },
        runnerGroup: 'Default',
        labels: ['linux'],
        minIdle: 0,
        max: 2,
        ephemeral: true,
        registration: 'jit',
        priority: 0,
        bootstrapTimeout: 60_000,
        idleTimeout: 60_000,
        provider: { kind: 'sim', url: sim.baseUrl, bootDelay: 0 },
      },
    ],
  } as FleetConfig;
}

/** The sim provider, but once `hang` is set its lists never end (abort ignored) and its close never does. */
function hangingSim(state: { hang: boolean; listsWaiting: number }): ProviderFactory<unknown> {
  const real = createSimProviderFactory() as ProviderFactory<unknown>;
  const never = new Promise<never>(() => undefined);
  return {
    kind: 'sim',
    schema: real.schema,
    create(config, context): Provider {
      const provider = real.create(config, context);
      return {
        ...provider,
        kind: provider.kind,
        create: (spec, signal) => provider.create(spec, signal),
        delete: (name, signal) => provider.delete(name, signal),
        list: (filter, signal) => {
          if (!state.hang) return provider.list(filter, signal);
          state.listsWaiting++;
          return never;
        },
        close: () => (state.hang ? never : (provider.close?.() ?? Promise.resolve())),
      };
    },
  };
}

const quiet = () => new Writable({ write: (_c, _e, done) => done() });

describe('controller stop', () => {
  it('abandons a provider that ignores its abort signal at the deadline, and says what it abandoned', async () => {
    const state = { hang: false, listsWaiting: 0 };
    const controller = await composeController({
      config: fleet('hung'),
      logDestination: quiet(),
      providerFactories: { sim: hangingSim(state) },
      stopTimeoutMs: 2_000,
    });
    expect(controller.readiness()).toEqual({
      ready: false,
      reason: 'not acting (not started, or standing by for leadership)',
    });
    await controller.start();
    expect(controller.readiness()).toEqual({ ready: true });
    expect(controller.health()).toEqual({ store: { status: 'ok' } });
    state.hang = true;
    // The next resync (every 500 ms) waits on the hung list.
    const deadline = Date.now() + 20_000;
    while (state.listsWaiting === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(state.listsWaiting).toBeGreaterThan(0);

    const started = performance.now();
    const stopping = controller.stop();
    expect(controller.readiness()).toEqual({ ready: false, reason: 'stopping' });
    const report = await stopping;
    const ms = performance.now() - started;
    expect(report.clean).toBe(false);
    expect(report.abandoned).toEqual(['reconciler', 'provider cloud']);
    // Within the bound (2 s), with room for a loaded machine's timers; the hung work was waited for, not dropped.
    expect(ms).toBeGreaterThanOrEqual(1_000);
    expect(ms).toBeLessThan(2_500);
    // A second stop is the same one.
    expect(await controller.stop()).toBe(report);
  });

  it('a controller whose calls end when aborted stops cleanly, well within the bound', async () => {
    const controller = await composeController({ config: fleet('clean'), logDestination: quiet() });
    await controller.start();
    await sim.setFaults({ latencyMs: 60_000 });
    try {
      // A resync is now waiting on GitHub.
      await new Promise((r) => setTimeout(r, 800));
      const report = await controller.stop();
      expect(report).toMatchObject({ clean: true, abandoned: [] });
      expect(report.ms).toBeLessThan(1_000);
    } finally {
      await sim.setFaults({ latencyMs: 0 });
    }
  });
});

/** The top-level keys of a JSON object's text, in order and with repeats (JSON.parse would keep only the last). */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      let k = j + 1;
      while (text[k] === ' ') k++;
      if (depth === 1 && text[k] === ':') keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}

describe('controller log', () => {
  it('names each field of a line once, GitHub calls included', async () => {
    let text = '';
    const sink = new Writable({
      write: (chunk: Buffer, _e, done) => {
        text += chunk.toString();
        done();
      },
    });
    const controller = await composeController({
      config: fleet('log'),
      logLevel: 'debug',
      logDestination: sink,
    });
    await controller.start();
    await controller.stop();
    const lines = text.split('\n').filter(Boolean);
    const calls = lines.map((l) => JSON.parse(l) as { msg?: string; component?: string });
    expect(calls.filter((l) => l.msg === 'GitHub API call').length).toBeGreaterThan(0);
    expect(calls.filter((l) => l.msg === 'GitHub API call').every((l) => l.component === 'github')).toBe(
      true,
    );
    const repeated = lines.filter((l) => new Set(topLevelKeys(l)).size !== topLevelKeys(l).length);
    expect(repeated).toEqual([]);
  });
});
