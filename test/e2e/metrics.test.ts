/**
 * /metrics of a running controller (`runner-fleet start` as a process) after real jobs against the simulator: job
 * counts per scale set and event, the queue-time histogram per scale set (one observation per job that started),
 * reconcile passes labelled by scale set, unroutable jobs counted under `scale_set="unroutable"`, provider creates
 * and webhook results: the values a Prometheus scrape sees, not the registry in-process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Simulator } from '../../src/sim/github/index.js';
import { freePort } from '../support/free-port.js';
import { simulatorCredentials, startFleetSimulator } from '../support/sim-fleet.js';
import { ControllerProcess } from './controller-process.js';
import { until } from './harness.js';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The Prometheus text format's samples (comments skipped). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

const JOBS = { alpha: 4, beta: 3 } as const;
const UNROUTABLE = 2;

describe('metrics of a running controller after real jobs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rf-metrics-'));
  let sim: Simulator;
  let controller: ControllerProcess;

  beforeAll(async () => {
    sim = await startFleetSimulator();
    const port = await freePort();
    const configPath = join(dir, 'fleet.yaml');
    writeFileSync(
      configPath,
      stringify({
        name: 'metrics',
        ...simulatorCredentials(sim, dir),
        server: { host: '127.0.0.1', port },
        store: { path: join(dir, 'fleet.db') },
        controller: { resyncInterval: '2s', failureBackoff: '1s' },
        scaleSets: ['alpha', 'beta'].map((name) => ({
          name,
          scope: { org: 'octo-org' },
          labels: ['linux', name],
          max: 10,
          provider: { kind: 'sim', bootDelay: '50ms' },
        })),
      }),
    );
    sim.setWebhook(`http://127.0.0.1:${port}/webhook`);
    controller = new ControllerProcess(configPath, port);
    await controller.start(90_000);
  }, 120_000);

  afterAll(async () => {
    sim?.setWebhook(null);
    await controller?.stop();
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts jobs per scale set, times their queue per scale set, and labels unroutable jobs', async () => {
    const created = {
      alpha: sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: ['self-hosted', 'linux', 'alpha'],
        count: JOBS.alpha,
      }),
      beta: sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: ['self-hosted', 'linux', 'beta'],
        count: JOBS.beta,
      }),
      nowhere: sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: ['self-hosted', 'gpu'],
        count: UNROUTABLE,
      }),
    };
    const routed = [...created.alpha, ...created.beta];
    await until(
      () => routed.every((j) => sim.job(j.id)?.status === 'completed'),
      120_000,
      'every routable job to complete',
      () => routed.map((j) => sim.job(j.id)?.status),
    );
    // Nobody serves the unroutable ones: cancel them, as their workflow run would be.
    for (const j of created.nowhere) sim.cancelJob(j.id);

    const scrape = async () => {
      const res = await fetch(`${controller.url}/metrics`);
      expect(res.headers.get('content-type')).toContain('text/plain');
      return parseMetrics(await res.text());
    };
    const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
      samples
        .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .reduce((sum, s) => sum + s.value, 0);
    let samples = await scrape();
    await until(
      async () => {
        samples = await scrape();
        return (
          value(samples, 'runner_fleet_jobs_total', { scale_set: 'alpha', event: 'completed' }) ===
            JOBS.alpha &&
          value(samples, 'runner_fleet_jobs_total', { scale_set: 'beta', event: 'completed' }) ===
            JOBS.beta &&
          value(samples, 'runner_fleet_jobs_total', { scale_set: 'unroutable', event: 'completed' }) ===
            UNROUTABLE
        );
      },
      60_000,
      'the completions to be counted',
      () => samples.filter((s) => s.name === 'runner_fleet_jobs_total'),
    );

    for (const [set, n] of Object.entries(JOBS)) {
      for (const event of ['queued', 'in_progress', 'completed']) {
        expect(value(samples, 'runner_fleet_jobs_total', { scale_set: set, event }), `${set} ${event}`).toBe(
          n,
        );
      }
      // One queue-time observation per job that started, under its scale set; the histogram is consistent.
      expect(value(samples, 'runner_fleet_job_queue_seconds_count', { scale_set: set })).toBe(n);
      expect(value(samples, 'runner_fleet_job_queue_seconds_bucket', { scale_set: set, le: '+Inf' })).toBe(n);
      // GitHub's timestamps have second resolution: these jobs started within seconds of being queued.
      expect(value(samples, 'runner_fleet_job_queue_seconds_bucket', { scale_set: set, le: '60' })).toBe(n);
      expect(value(samples, 'runner_fleet_reconcile_seconds_count', { scale_set: set })).toBeGreaterThan(0);
    }
    expect(value(samples, 'runner_fleet_jobs_total', { scale_set: 'unroutable', event: 'unroutable' })).toBe(
      UNROUTABLE,
    );
    expect(value(samples, 'runner_fleet_unroutable_jobs_total')).toBe(UNROUTABLE);
    // An unroutable job never started: no queue time, and no reconcile pass is labelled with it.
    expect(value(samples, 'runner_fleet_job_queue_seconds_count', { scale_set: 'unroutable' })).toBe(0);
    const reconcileSets = new Set(
      samples.filter((s) => s.name === 'runner_fleet_reconcile_seconds_count').map((s) => s.labels.scale_set),
    );
    expect(reconcileSets).toEqual(new Set(['alpha', 'beta']));
    const jobSets = new Set(
      samples.filter((s) => s.name === 'runner_fleet_jobs_total').map((s) => s.labels.scale_set),
    );
    expect(jobSets).toEqual(new Set(['alpha', 'beta', 'unroutable']));

    // One ephemeral runner per routed job, created by the sim provider.
    expect(
      value(samples, 'runner_fleet_provider_operations_total', {
        provider: 'sim',
        op: 'create',
        result: 'ok',
      }),
    ).toBe(JOBS.alpha + JOBS.beta);
    // Every delivery verified and accepted: three per routed job, queued and completed for the others.
    expect(
      value(samples, 'runner_fleet_webhooks_total', { event: 'workflow_job', result: 'unauthorized' }),
    ).toBe(0);
    expect(value(samples, 'runner_fleet_webhooks_total', { event: 'workflow_job', result: 'accepted' })).toBe(
      3 * (JOBS.alpha + JOBS.beta) + 2 * UNROUTABLE,
    );
    expect(value(samples, 'runner_fleet_github_api_calls_total')).toBeGreaterThan(0);
  }, 240_000);
});
