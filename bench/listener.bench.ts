/**
 * `npm run bench -- listener`: webhook discovery beside scale-set discovery, same workload, one run each. The
 * controller is composed as `start` composes it, in this process, against the simulator (which serves webhooks and
 * the Actions service's runner scale set protocol) with its `sim` provider; each mode gets a fresh simulator and
 * store.
 *
 * Workload: 20 jobs one at a time (400 ms apart, so each is alone) for the latency, then a burst of 40, every job
 * 300 ms long, max 50 runners.
 *
 * Measured:
 * - queued to create call: from the simulator queueing a job (createJobs) to the provider's create call for the
 *   runner the controller asks for, for the jobs that arrive alone (webhook: one delivery; scale-set: one long-poll
 *   answer);
 * - calls per job: GitHub REST calls and Actions service calls (long polls and 202s included) counted by the
 *   simulator from the first job to the controller's stop, divided by the 60 jobs; webhook deliveries beside.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { composeController } from '../src/app/compose.js';
import type { FleetConfig } from '../src/core/fleet-config.js';
import type { Provider } from '../src/core/provider-port.js';
import type { ProviderFactory } from '../src/providers/provider.js';
import { createSimProviderFactory } from '../src/providers/sim/index.js';
import { startSimulator } from '../src/sim/github/index.js';
import { percentile, waitFor } from './fleet-peers.js';
import type { BenchResult, Benchmark } from './harness.js';
import { GITHUB_DEFAULT_LIMITS } from './harness.js';

const SINGLE_JOBS = 20;
const SINGLE_GAP_MS = 400;
const BURST = 40;
const JOBS = SINGLE_JOBS + BURST;
const MAX = 50;

type Mode = 'webhook' | 'scale-set';

interface ModeResult {
  readonly latencies: number[];
  readonly rest: number;
  readonly actions: number;
  readonly byRoute: Record<string, number>;
  /** Webhook deliveries the simulator sent to the controller in the same window. */
  readonly webhooks: number;
}

function timedFactory(onCreate: (at: number) => void): ProviderFactory<unknown> {
  const real = createSimProviderFactory() as ProviderFactory<unknown>;
  return {
    kind: 'sim',
    schema: real.schema,
    create(config, context): Provider {
      const inner = real.create(config, context);
      const seen = new Set<string>();
      const wrapped: Provider = {
        kind: inner.kind,
        create(spec, signal) {
          if (!seen.has(spec.name)) {
            seen.add(spec.name);
            onCreate(performance.now());
          }
          return inner.create(spec, signal);
        },
        delete: (name, signal) => inner.delete(name, signal),
        list: (selector, signal) => inner.list(selector, signal),
        close: () => inner.close?.() ?? Promise.resolve(),
      };
      if (inner.watch !== undefined) wrapped.watch = (onChange) => inner.watch!(onChange);
      return wrapped;
    },
  };
}

async function runMode(mode: Mode, log: (line: string) => void): Promise<ModeResult> {
  // GitHub's limits, as the simulator has them by default.
  const sim = await startSimulator({ orgs: ['octo-org'] });
  const dir = mkdtempSync(path.join(tmpdir(), 'rf-bench-listener-'));
  const creates: number[] = [];
  try {
    const config = {
      name: 'bench',
      github: { url: sim.baseUrl, apiUrl: sim.apiUrl, ghes: false, auth: { token: sim.token } },
      webhook: { secret: sim.webhookSecret },
      server: { host: '127.0.0.1', port: 0 },
      store: { path: path.join(dir, 'fleet.db') },
      controller: {
        resyncInterval: 30_000,
        orphanGracePeriod: 120_000,
        failureBackoff: 5_000,
        concurrency: 64,
      },
      scaleSets: [
        {
          name: 'bench',
          scope: { org: 'octo-org' },
          runnerGroup: 'Default',
          labels: ['bench'],
          minIdle: 0,
          max: MAX,
          ephemeral: true,
          registration: 'jit',
          discovery: mode,
          priority: 0,
          bootstrapTimeout: 600_000,
          idleTimeout: 300_000,
          provider: { kind: 'sim', url: sim.baseUrl, bootDelay: 0 },
        },
      ],
    } as FleetConfig;
    const controller = await composeController({
      config,
      logger: pino({ level: 'silent' }),
      dashboard: false,
      providerFactories: { sim: timedFactory((at) => creates.push(at)) },
    });
    const url = await controller.start();
    sim.setWebhook(`${url}/webhook`);
    if (mode === 'scale-set') {
      await waitFor('a message session', () => sim.scaleSets().some((s) => s.session !== null), 30_000);
    }
    const before = sim.stats().apiCalls.byRoute;
    const webhooksBefore = sim.stats().webhooks.sent;

    const latencies: number[] = [];
    for (let i = 0; i < SINGLE_JOBS; i++) {
      const seen = creates.length;
      const queuedAt = performance.now();
      const [job] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['bench'], durationMs: 300 });
      await waitFor('a create call', () => creates.length > seen, 30_000);
      latencies.push(creates[seen]! - queuedAt);
      await waitFor('the job done', () => sim.job(job!.id)?.status === 'completed', 30_000);
      await new Promise((r) => setTimeout(r, SINGLE_GAP_MS));
    }
    const burst = sim.createJobs({
      owner: 'octo-org',
      repo: 'app',
      labels: ['bench'],
      count: BURST,
      durationMs: 300,
    });
    await waitFor('the burst done', () => burst.every((j) => sim.job(j.id)?.status === 'completed'), 120_000);
    await waitFor('no runner left', () => sim.runners().length === 0, 60_000);
    await controller.stop();

    const after = sim.stats().apiCalls.byRoute;
    const webhooks = sim.stats().webhooks.sent - webhooksBefore;
    const byRoute: Record<string, number> = {};
    for (const [route, n] of Object.entries(after)) {
      const d = n - (before[route] ?? 0);
      if (d > 0) byRoute[route] = d;
    }
    let rest = 0;
    let actions = 0;
    for (const [route, n] of Object.entries(byRoute)) {
      if (route.includes('{actions}')) actions += n;
      else rest += n;
    }
    latencies.sort((a, b) => a - b);
    log(
      `${mode}: queued to create p50 ${Math.round(percentile(latencies, 50))} ms; ` +
        `REST ${rest}, Actions ${actions} calls for ${JOBS} jobs; ${JSON.stringify(byRoute)}`,
    );
    return { latencies, rest, actions, byRoute, webhooks };
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const benchmark: Benchmark = {
  id: 'listener',
  title: 'Scale-set discovery beside webhooks: queued to create call, calls per job',
  limits: GITHUB_DEFAULT_LIMITS,
  async run(log) {
    const webhook = await runMode('webhook', log);
    const scaleSet = await runMode('scale-set', log);
    const out: BenchResult[] = [];
    const round = (v: number) => Math.round(v * 10) / 10;
    for (const [mode, r] of [
      ['webhook', webhook],
      ['scale-set', scaleSet],
    ] as const) {
      out.push(
        {
          name: `listener.${mode}.queued-to-create.p50`,
          value: round(percentile(r.latencies, 50)),
          unit: 'ms',
          notes: `${SINGLE_JOBS} jobs one at a time: p95 ${round(percentile(r.latencies, 95))} ms, max ${round(
            percentile(r.latencies, 100),
          )} ms, from createJobs in the simulator to the provider's create call`,
        },
        {
          name: `listener.${mode}.calls-per-job`,
          value: round((r.rest + r.actions) / JOBS),
          unit: 'calls',
          notes:
            `${JOBS} jobs (${SINGLE_JOBS} alone, a burst of ${BURST}): ${r.rest} GitHub REST calls and ${r.actions} ` +
            `Actions service calls (long polls and acknowledgements included), counted from the first job to the ` +
            `stop` +
            (mode === 'webhook'
              ? `; GitHub also sent ${r.webhooks} webhook deliveries to the controller`
              : '; the token exchange and session opening before the first job are not counted'),
        },
      );
    }
    return out;
  },
};
