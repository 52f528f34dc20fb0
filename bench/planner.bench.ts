/**
 * One planning pass over a large scale set: 10,000 runner records in every lifecycle state, 10,000 pending jobs,
 * a GitHub runner list and a provider instance list of the same size (with some orphans and strays). About 6,200
 * runners are missing; the planner plans at most 1,000 per pass (its default `maxCreatesPerPass`).
 *  - planner.pass: the pure planner alone (`planScaleSet`), the number the target is about.
 *  - reconciler.snapshot-and-plan: what a reconcile pass costs in the controller: building the snapshot from the
 *    SQLite store's in-memory indexes (the same function the reconciler uses), then planning.
 * Each is run PASSES times after WARMUP passes; p50 and p99 are reported.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ScaleSetConfig } from '../src/core/fleet-config.js';
import type { RunnerState } from '../src/core/types.js';
import type {
  ObservedGitHubRunner,
  ObservedInstance,
  RunnerSnapshot,
  ScaleSetSnapshot,
} from '../src/core/plan-types.js';
import { planScaleSet } from '../src/core/planner.js';
import { buildSnapshot } from '../src/core/snapshot.js';
import { Observations } from '../src/core/observations.js';
import { seededRandom } from '../src/core/names.js';
import { Store } from '../src/store/store.js';
import type { BenchResult, Benchmark } from './harness.js';

const RUNNERS = 10_000;
const JOBS = 10_000;
const WARMUP = 20;
const PASSES = 500;
const TARGET_MS = 50;
const NOW = 1_800_000_000_000;
const MINUTE = 60_000;

const set: ScaleSetConfig = {
  name: 'linux-large',
  scope: { org: 'octo-org' },
  runnerGroup: 'Default',
  labels: ['linux', 'x64', 'large'],
  minIdle: 10,
  max: 25_000,
  ephemeral: true,
  registration: 'jit',
  priority: 0,
  bootstrapTimeout: 10 * MINUTE,
  idleTimeout: 5 * MINUTE,
  provider: { kind: 'sim' },
};
const timings = {
  resyncInterval: 30_000,
  orphanGracePeriod: 2 * MINUTE,
  failureBackoff: 5_000,
  concurrency: 64,
};

/** A mix close to a busy fleet: mostly busy and starting, some idle, some being cleaned up. */
const MIX: readonly [RunnerState, number][] = [
  ['busy', 0.55],
  ['starting', 0.2],
  ['idle', 0.1],
  ['creating', 0.05],
  ['requested', 0.03],
  ['finished', 0.04],
  ['failed', 0.02],
  ['bootstrap-timeout', 0.01],
];

function stateFor(i: number): RunnerState {
  let x = (i % 1000) / 1000;
  for (const [state, share] of MIX) {
    if (x < share) return state;
    x -= share;
  }
  return 'busy';
}

const nameOf = (i: number) => `linux-large-${i.toString(36).padStart(8, '0')}`;

interface World {
  readonly runners: RunnerSnapshot[];
  readonly gh: Map<string, ObservedGitHubRunner>;
  readonly instances: Map<string, ObservedInstance>;
}

function world(): World {
  const runners: RunnerSnapshot[] = [];
  const gh = new Map<string, ObservedGitHubRunner>();
  const instances = new Map<string, ObservedInstance>();
  for (let i = 0; i < RUNNERS; i++) {
    const state = stateFor(i);
    const name = nameOf(i);
    const changed = NOW - ((i * 7919) % (20 * MINUTE));
    runners.push({
      name,
      scaleSet: set.name,
      state,
      reason: null,
      githubId: i + 1,
      createdAt: changed - MINUTE,
      stateChangedAt: changed,
      instanceDeletedAt: null,
      registrationDeletedAt: null,
      job: state === 'busy' ? { id: 1_000_000 + i, status: 'in_progress', at: changed } : null,
      inFlight: i % 97 === 0,
    });
    if (state !== 'requested' && state !== 'creating') {
      gh.set(name, {
        id: i + 1,
        name,
        status: state === 'starting' ? 'offline' : 'online',
        busy: state === 'busy',
        labels: set.labels,
        firstSeenAt: changed,
      });
      instances.set(name, {
        name,
        fleet: 'runner-fleet',
        scaleSet: set.name,
        state: 'running',
        createdAt: changed,
        observedAt: NOW - 10_000,
      });
    }
  }
  // leftovers in both directions
  for (let i = 0; i < 50; i++) {
    const name = nameOf(RUNNERS + i);
    gh.set(name, {
      id: 900_000 + i,
      name,
      status: 'offline',
      busy: false,
      labels: [],
      firstSeenAt: NOW - 10 * MINUTE,
    });
    const stray = nameOf(RUNNERS + 100 + i);
    instances.set(stray, {
      name: stray,
      fleet: 'runner-fleet',
      scaleSet: set.name,
      state: 'running',
      createdAt: NOW - 20 * MINUTE,
      observedAt: NOW - 10_000,
    });
  }
  return { runners, gh, instances };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Measured {
  readonly p50: number;
  readonly p99: number;
  /** CPU time of this process per pass (all its threads, GC included), which other processes' load does not inflate. */
  readonly cpuP50: number;
  readonly cpuP99: number;
  readonly actions: number;
}

function measure(run: () => number): Measured {
  let actions = 0;
  for (let i = 0; i < WARMUP; i++) actions = run();
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < PASSES; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    actions = run();
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  return {
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    cpuP50: percentile(cpu, 50),
    cpuP99: percentile(cpu, 99),
    actions,
  };
}

const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');

/** The benchmark's scale set, timings and snapshot (exported for profiling). */
export function plannerInput(w: World = world()) {
  const snapshot: ScaleSetSnapshot = {
    name: set.name,
    runners: w.runners,
    jobs: Array.from({ length: JOBS }, (_, i) => ({
      id: i + 1,
      owner: 'octo-org',
      repo: 'app',
      status: 'queued' as const,
      queuedAt: NOW - (i % 60_000),
      startedAt: null,
      checkedAt: i % 3 === 0 ? NOW - 5_000 : null,
      inFlight: false,
    })),
    github: { at: NOW - 10_000, runners: w.gh },
    instances: { at: NOW - 10_000, items: w.instances },
    backoff: { failures: 0, until: 0 },
  };
  return { set, timings, now: NOW, snapshot };
}

export const benchmark: Benchmark = {
  id: 'planner',
  title: 'Planner: one pass over 10,000 runners and 10,000 pending jobs',
  limits: 'none: the planner alone, no GitHub call',
  async run(log) {
    const w = world();
    const { snapshot } = plannerInput(w);
    const random = seededRandom(1);
    const loadBefore = load();
    const pure = measure(() => planScaleSet(snapshot, set, timings, NOW, { random }).length);
    log(
      `planner.pass: p50 ${pure.p50.toFixed(2)} ms, p99 ${pure.p99.toFixed(2)} ms (CPU p50 ${pure.cpuP50.toFixed(2)}, ` +
        `p99 ${pure.cpuP99.toFixed(2)}), ${pure.actions} actions; load average ${loadBefore}`,
    );

    // The same world in a real store (file-backed SQLite), planned through the reconciler's snapshot builder.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rf-bench-planner-'));
    try {
      const store = Store.open({ path: path.join(dir, 'fleet.db'), route: () => set.name, now: () => NOW });
      store.insertRunners(w.runners.map((r) => ({ name: r.name, scaleSet: set.name })));
      for (const r of w.runners) {
        if (r.state !== 'requested') store.updateRunner(r.name, { state: r.state, githubId: r.githubId });
      }
      for (let i = 0; i < JOBS; i++) {
        store.acceptWorkflowJob({
          deliveryId: `d${i}`,
          action: 'queued',
          installationId: 1,
          job: {
            id: i + 1,
            runId: i + 1,
            owner: 'octo-org',
            repo: 'app',
            labels: set.labels,
            status: 'queued',
            conclusion: null,
            runnerId: null,
            runnerName: null,
            createdAt: NOW - (i % 60_000),
            startedAt: null,
            completedAt: null,
          },
        });
      }
      const observations = new Observations();
      observations.setGitHub(set.name, NOW - 10_000, [...w.gh.values()]);
      observations.setInstances(set.name, NOW - 10_000, [...w.instances.values()]);
      const idle = { runnerInFlight: (n: string) => n.endsWith('0'), jobInFlight: () => false };
      const full = measure(() => {
        const s = buildSnapshot(set, store, observations, idle);
        return planScaleSet(s, set, timings, NOW, { random }).length;
      });
      log(
        `reconciler.snapshot-and-plan: p50 ${full.p50.toFixed(2)} ms, p99 ${full.p99.toFixed(2)} ms, ${full.actions} actions`,
      );
      store.close();
      const results: BenchResult[] = [
        {
          name: 'planner.pass.p50',
          value: pure.p50,
          unit: 'ms',
          target: `<= ${TARGET_MS} ms`,
          pass: pure.p50 <= TARGET_MS,
          notes:
            `wall clock; ${RUNNERS} runners (mixed states), ${JOBS} queued jobs, ${w.gh.size} GitHub runners, ` +
            `${w.instances.size} instances; ${PASSES} passes after ${WARMUP} warm-up; ${pure.actions} actions per ` +
            `pass, of which 1,000 new runners (the planner's default cap per pass; the other ~5,200 missing runners ` +
            `are planned in the following passes, at once); load average (1/5/15 min) when it started: ` +
            `${loadBefore}, on a machine shared with other work`,
        },
        {
          name: 'planner.pass.p99',
          value: pure.p99,
          unit: 'ms',
          target: `<= ${TARGET_MS} ms`,
          pass: pure.p99 <= TARGET_MS,
          notes: 'wall clock: includes time the process waited for a core while other processes ran',
        },
        {
          name: 'planner.pass.cpu.p50',
          value: pure.cpuP50,
          unit: 'ms',
          notes: 'CPU time of the process per pass (garbage collection included)',
        },
        { name: 'planner.pass.cpu.p99', value: pure.cpuP99, unit: 'ms' },
        {
          name: 'reconciler.snapshot-and-plan.p50',
          value: full.p50,
          unit: 'ms',
          notes: 'the snapshot built from the SQLite store’s in-memory indexes, then the same plan',
        },
        { name: 'reconciler.snapshot-and-plan.p99', value: full.p99, unit: 'ms' },
      ];
      return results;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
