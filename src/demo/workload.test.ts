import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator } from '../sim/github/index.js';
import type { Simulator } from '../sim/github/index.js';
import { planWorkload, runWorkload, simJobsClient } from './workload.js';
import type { WorkloadTarget } from './workload.js';

const targets: WorkloadTarget[] = [
  { owner: 'octo-org', repo: 'app', labels: ['self-hosted', 'linux', 'process'], weight: 3 },
  { owner: 'octo-org', repo: 'app', labels: ['self-hosted', 'linux', 'cloud'], weight: 8 },
];
const unroutable = { owner: 'octo-org', repo: 'app', labels: ['self-hosted', 'gpu'] };

let sim: Simulator | null = null;
afterEach(async () => {
  await sim?.close();
  sim = null;
});

describe('planWorkload', () => {
  it('mixes a trickle, a 50-job burst, one cancelled and one unroutable job, adding up to the total', () => {
    const plan = planWorkload({ jobs: 150, durationMs: 20_000, targets, unroutable });
    const jobSteps = plan.steps.filter((s) => s.kind === 'jobs');
    expect(jobSteps.reduce((n, s) => n + s.count, 0)).toBe(150);
    expect(plan.totals).toEqual({ jobs: 150, routable: 149, unroutable: 1, cancelled: 1, burst: 50 });
    const burst = jobSteps.filter((s) => s.tag === 'burst');
    expect(burst).toHaveLength(1);
    expect(burst[0]!.count).toBe(50);
    expect(burst[0]!.labels).toEqual(targets[1]!.labels);
    expect(plan.steps.filter((s) => s.kind === 'cancel')).toHaveLength(1);
    // Different durations, every target used, in time order.
    expect(
      new Set(jobSteps.filter((s) => s.tag === 'trickle').map((s) => s.durationMs)).size,
    ).toBeGreaterThan(2);
    for (const t of targets) expect(jobSteps.some((s) => s.labels.join() === t.labels.join())).toBe(true);
    const times = plan.steps.map((s) => s.atMs);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(plan.lastQueueAtMs).toBeLessThanOrEqual(20_000);
  });

  it('scales the burst down for small runs and is reproducible with a seed', () => {
    const a = planWorkload({ jobs: 40, durationMs: 5_000, targets, unroutable, seed: 7 });
    expect(a.totals.burst).toBe(16);
    expect(planWorkload({ jobs: 40, durationMs: 5_000, targets, unroutable, seed: 7 })).toEqual(a);
    expect(planWorkload({ jobs: 1, durationMs: 0, targets, unroutable }).totals).toEqual({
      jobs: 1,
      routable: 1,
      unroutable: 0,
      cancelled: 0,
      burst: 0,
    });
  });

  it('rejects what cannot be planned', () => {
    expect(() => planWorkload({ jobs: 0, durationMs: 1, targets })).toThrow(/jobs/);
    expect(() => planWorkload({ jobs: 5, durationMs: 1, targets: [] })).toThrow(/target/);
  });
});

describe('runWorkload against the simulator', () => {
  it('queues every job of the plan and cancels the one meant to be cancelled (in process and over HTTP)', async () => {
    sim = await startSimulator();
    const plan = planWorkload({ jobs: 12, durationMs: 300, targets, unroutable, cancelAfterMs: 50 });
    for (const client of [sim, simJobsClient(sim.baseUrl)]) {
      const steps: string[] = [];
      const run = await runWorkload(plan, client, { onStep: (s) => steps.push(s.kind) });
      expect(run.jobs).toHaveLength(12);
      expect(run.skipped).toBe(0);
      expect(run.byTag.unroutable).toHaveLength(1);
      expect(run.cancelled).toEqual(run.byTag.cancelled);
      expect(sim.job(run.cancelled[0]!)?.conclusion).toBe('cancelled');
      expect(steps.at(-1)).toBeDefined();
    }
    expect(sim.jobs().length).toBe(24);
  });

  it('stops when aborted and counts the steps left', async () => {
    sim = await startSimulator();
    const plan = planWorkload({ jobs: 20, durationMs: 10_000, targets, unroutable });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const started = Date.now();
    const run = await runWorkload(plan, sim, { signal: abort.signal });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(run.skipped).toBeGreaterThan(0);
  });
});
