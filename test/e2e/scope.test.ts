/**
 * Routing by scope, end to end: the built `runner-fleet start` against the simulator with the App installed on two
 * organizations. An organization's scale set serves only that organization's repositories, and a repository's scale
 * set only that repository, as GitHub enforces it: a job whose labels match a scale set of another scope gets no
 * runner (GitHub would never give it one) and is reported unroutable, by the API and the metrics, while the jobs in
 * scope are served.
 *
 * Needs `npm run build`.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/core/read-models.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { jitRegistrations, startFleetSimulator } from '../support/sim-fleet.js';
import { StartedCli, requireBuiltCli, writeStartConfig } from '../support/start-cli.js';
import { untilEvery } from '../support/until.js';

const until = untilEvery(100);

interface Run {
  sim: Simulator;
  url: string;
  served: number[];
  unroutable: number[];
}

let run: Run | undefined;
const cleanup: (() => Promise<void> | void)[] = [];

async function json<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return (await res.json()) as T;
}

beforeAll(async () => {
  requireBuiltCli();
  const sim = await startFleetSimulator({ orgs: ['octo-org', 'other-org'] });
  cleanup.push(() => sim.close());
  const files = writeStartConfig(sim, {
    scaleSets: [
      { name: 'octo', scope: { org: 'octo-org' }, labels: ['linux', 'x64'], max: 3 },
      { name: 'lib', scope: { repo: 'other-org/lib' }, labels: ['linux', 'gpu'], max: 2 },
    ],
  });
  cleanup.push(() => rmSync(files.dir, { recursive: true, force: true }));
  const cli = new StartedCli(files.configPath);
  cleanup.unshift(async () => {
    cli.signal('SIGTERM');
    await cli.exited;
  });
  const url = await cli.ready();
  sim.setWebhook(`${url}/webhook`);

  const jobs = (owner: string, repo: string, labels: string[], count: number) =>
    sim.createJobs({ owner, repo, labels, count, durationMs: 200 }).map((j) => j.id);
  // In scope: octo-org's repositories for `octo`, other-org/lib for `lib`.
  const served = [
    ...jobs('octo-org', 'app', ['self-hosted', 'linux', 'x64'], 4),
    ...jobs('octo-org', 'web', ['linux'], 2),
    ...jobs('other-org', 'lib', ['linux', 'gpu'], 2),
  ];
  // Labels that a scale set covers, in a repository outside its scope.
  const unroutable = [
    ...jobs('other-org', 'app', ['self-hosted', 'linux', 'x64'], 3),
    ...jobs('other-org', 'web', ['linux'], 1),
    ...jobs('octo-org', 'lib', ['linux', 'gpu'], 1),
  ];
  await until(
    () => served.every((id) => sim.job(id)?.status === 'completed'),
    90_000,
    'every job in scope completed',
    () => served.map((id) => `${id}:${sim.job(id)?.status}`),
  );
  // The controller has recorded every unroutable job.
  await until(
    async () =>
      (await json<{ jobs: JobView[] }>(`${url}/api/v1/jobs?unroutable=true`)).jobs.length ===
      unroutable.length,
    30_000,
    'the unroutable jobs recorded',
  );
  run = { sim, url, served, unroutable };
}, 180_000);

afterAll(async () => {
  if (run !== undefined) for (const id of run.unroutable) run.sim.cancelJob(id);
  for (const step of cleanup.splice(0)) await step();
});

function finished(): Run {
  if (run === undefined) throw new Error('the run did not finish (see beforeAll)');
  return run;
}

describe('routing by scope, App installed on two organizations', () => {
  it('serves the jobs in scope: each ran on a runner of the scale set that serves its repository', () => {
    const { sim, served } = finished();
    for (const id of served) {
      const job = sim.job(id)!;
      expect(job.status, `job ${id}`).toBe('completed');
      expect(job.conclusion, `job ${id}`).toBe('success');
      expect(job.runnerName, `job ${id}`).toMatch(job.owner === 'octo-org' ? /^octo-/ : /^lib-/);
    }
  });

  it('gives no runner to a job whose labels match a scale set of another scope', () => {
    const { sim, unroutable, served } = finished();
    for (const id of unroutable) expect(sim.job(id)?.status, `job ${id}`).toBe('queued');
    // No runner was ever registered where the out-of-scope jobs are: every JIT registration is in scope.
    const jitPaths = sim
      .recordedExchanges()
      .filter((x) => x.template?.endsWith('/generate-jitconfig'))
      .map((x) => x.url);
    expect(jitPaths.length).toBeGreaterThan(0);
    for (const path of jitPaths) {
      expect(path).toMatch(
        /^\/(orgs\/octo-org|repos\/other-org\/lib)\/actions\/runners\/generate-jitconfig$/,
      );
    }
    // One single-use runner per job in scope, none for the others.
    const registered = jitRegistrations(sim, ['octo', 'lib']);
    const servedIn = (owner: string) => served.filter((id) => sim.job(id)?.owner === owner).length;
    expect(registered.get('octo')).toHaveLength(servedIn('octo-org'));
    expect(registered.get('lib')).toHaveLength(servedIn('other-org'));
  });

  it('reports them unroutable: /api/v1/jobs and runner_fleet_unroutable_jobs_total', async () => {
    const { url, unroutable, served } = finished();
    const listed = (await json<{ jobs: JobView[] }>(`${url}/api/v1/jobs?unroutable=true`)).jobs;
    expect(listed.map((j) => j.id).sort()).toEqual([...unroutable].sort());
    for (const job of listed) {
      expect(job).toMatchObject({ status: 'queued', scaleSet: null, unroutable: true });
    }
    const all = (await json<{ jobs: JobView[] }>(`${url}/api/v1/jobs?completedLimit=100`)).jobs;
    for (const id of served) {
      expect(all.find((j) => j.id === id)?.scaleSet, `job ${id}`).toBe(
        all.find((j) => j.id === id)?.owner === 'octo-org' ? 'octo' : 'lib',
      );
    }
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^runner_fleet_unroutable_jobs_total ${unroutable.length}$`, 'm'));
  });
});
