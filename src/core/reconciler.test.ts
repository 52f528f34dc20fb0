/**
 * The reconciler against real peers: the GitHub simulator (REST, App semantics, emulated runners, signed webhooks),
 * the real GitHub client, the sim provider and a SQLite file. Each test drives jobs through the simulator and checks
 * the invariants from the outside: what the simulator holds (registrations, instances, jobs) and what the store says.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, until } from '../../test/support/core/reconciler.js';
import type { Controller } from '../../test/support/core/reconciler.js';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const LABELS = ['self-hosted', 'linux', 'x64'];

/** Every runner of a scale set on record: the live ones (memory) and those deleted in the last hour (the file). */
function allRunners(c: Controller, set: string) {
  return [...c.store.runners(set).filter((r) => r.state !== 'deleted'), ...c.store.deletedRunners(set)];
}

function completed(harness: Harness): number {
  return harness.sim.jobs('completed').length;
}

describe('reconciler against the simulator', () => {
  it('gives each queued job one JIT runner, never exceeds max, and drains back to minIdle with nothing left', async () => {
    h = await Harness.start({ scaleSets: [{ name: 'lin', max: 4 }] });
    const c = await h.startController();
    // Long enough for a follow-up pass (at most LAZY_PASS_MS after the job starts) to mark its runner busy.
    h.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: LABELS, count: 10, durationMs: 2_500 });
    let peak = 0;
    const sample = () => {
      const live = h!.leftovers();
      peak = Math.max(peak, live.instances.length, live.runners.length);
      const records = c.store.runners('lin').filter((r) => r.state !== 'deleted').length;
      peak = Math.max(peak, records);
    };
    await until(() => completed(h!) === 10, 30_000, sample);
    await until(
      () => h!.leftovers().instances.length === 0 && h!.leftovers().runners.length === 0,
      20_000,
      sample,
    );
    await until(() => allRunners(c, 'lin').every((r) => r.state === 'deleted'), 10_000);
    expect(peak).toBeLessThanOrEqual(4);
    // one runner per job: ten registrations, each ran exactly one job
    const rows = allRunners(c, 'lin');
    expect(rows).toHaveLength(10);
    const ran = new Set(h.sim.jobs('completed').map((j) => j.runnerName));
    for (const r of rows) expect(ran.has(r.name)).toBe(true);
    // Deleted runners leave memory once planning no longer needs them (2 resync intervals here) ...
    await until(() => c.store.runners('lin').length === 0, 10_000);
    // ... and the API still lists them, with the job each ran, from the file.
    const listed = c.readModel.runners({ scaleSet: 'lin', includeDeleted: true });
    expect(listed.map((r) => r.name).sort()).toEqual(rows.map((r) => r.name).sort());
    for (const r of listed) expect(r.job).toMatchObject({ status: 'completed' });
    expect(c.readModel.runners({ scaleSet: 'lin' })).toEqual([]);
    const jit = Object.entries(h.sim.stats().apiCalls.byRoute)
      .filter(([route]) => route.includes('generate-jitconfig'))
      .reduce((n, [, v]) => n + v, 0);
    expect(jit).toBe(10);
    // the read models saw it all and hold no secret
    const view = c.readModel.scaleSets()[0]!;
    expect(view).toMatchObject({ name: 'lin', activeRunners: 0, queuedJobs: 0, max: 4 });
    const history = c.readModel.events({ kind: 'runner', limit: 1000 }).map((e) => e.event);
    for (const state of ['requested', 'creating', 'starting', 'busy', 'finished', 'deleted']) {
      expect(history).toContain(state);
    }
    expect(
      JSON.stringify([
        c.readModel.runners({ includeDeleted: true }),
        c.readModel.jobs({ completedLimit: 50 }),
      ]),
    ).not.toMatch(/jit|token|\.runner|credentials/i);
  }, 60_000);

  it('keeps persistent token-mode runners at minIdle, grows them for queued jobs up to max, and shrinks after idleTimeout', async () => {
    h = await Harness.start({
      scaleSets: [
        { name: 'persist', ephemeral: false, registration: 'token', minIdle: 1, max: 3, idleTimeout: 800 },
      ],
    });
    const c = await h.startController();
    await until(() => c.readModel.runners({ state: 'idle' }).length === 1, 20_000);
    h.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: LABELS, count: 6, durationMs: 300 });
    let peak = 0;
    await until(
      () => completed(h!) === 6,
      30_000,
      () => {
        peak = Math.max(peak, c.store.runners('persist').filter((r) => r.state !== 'deleted').length);
      },
    );
    expect(peak).toBe(3);
    await until(
      () =>
        c.store.runners('persist').filter((r) => r.state !== 'deleted').length === 1 &&
        h!.leftovers().runners.length === 1 &&
        h!.leftovers().instances.length === 1,
      20_000,
    );
    // the runners that went were removed after GitHub confirmed they were idle, registration first
    const retired = c.readModel
      .events({ kind: 'runner', limit: 500 })
      .filter((e) => e.reason === 'idle timeout');
    expect(retired.length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('after a crash mid-burst, a restart on the same store loses no job, adds no runner for one, and leaks nothing', async () => {
    // A long resync interval, so jobs from before the crash are not yet due for their periodic status check.
    h = await Harness.start({
      scaleSets: [{ name: 'lin', max: 20, bootDelay: 300 }],
      controller: { resyncInterval: 10_000 },
    });
    let c = await h.startController();
    h.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: LABELS, count: 12, durationMs: 300 });
    // Every job known before the crash (this harness has no redelivery for a `queued` sent while it is down).
    await until(
      () =>
        h!.received.filter((e) => e.action === 'queued').length === 12 &&
        c.store.runners('lin').some((r) => r.state === 'starting'),
      20_000,
    );
    await h.crash();
    // While the controller is down its runners take jobs and finish them; those webhooks are lost (GitHub does
    // not redeliver by itself), so after the restart the store still says queued for jobs that are done.
    await new Promise((r) => setTimeout(r, 1500));
    c = await h.startController();
    await until(() => completed(h!) === 12, 40_000);
    await until(() => h!.leftovers().instances.length === 0 && h!.leftovers().runners.length === 0, 30_000);
    await until(() => allRunners(c, 'lin').every((r) => r.state === 'deleted'), 10_000);
    const rows = allRunners(c, 'lin');
    const ran = new Set(h.sim.jobs('completed').map((j) => j.runnerName));
    expect(ran.size).toBe(12);
    // Every runner either ran a job or never got an instance (its create was cut short by the crash). None was
    // created for a job that already had one, to idle and be retired: jobs known from before the restart are
    // checked with GitHub before they count again.
    for (const r of rows.filter((x) => !ran.has(x.name))) {
      const history = c.store.recentEvents({ runner: r.name }).map((e) => e.reason ?? e.event);
      expect(history.join(' | ')).toMatch(/interrupted|no longer needed/);
      expect(history.join(' | ')).not.toMatch(/idle timeout|runner online/);
    }
  }, 90_000);

  it('under duplicated and reordered webhooks and failing GitHub calls, every job completes and nothing leaks', async () => {
    h = await Harness.start({ scaleSets: [{ name: 'lin', max: 8 }], controller: { resyncInterval: 700 } });
    h.sim.setFaults({
      webhookDuplicateRate: 1,
      webhookReorder: true,
      webhookDelayMs: 150,
      apiErrorRate: 0.2,
      apiLostResponseRate: 0.05,
      apiErrorStatus: 500,
    });
    const c = await h.startController();
    h.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: LABELS, count: 20, durationMs: 150 });
    let peak = 0;
    await until(
      () => completed(h!) === 20,
      60_000,
      () => {
        peak = Math.max(peak, c.store.runners('lin').filter((r) => r.state !== 'deleted').length);
      },
    );
    h.sim.setFaults({ apiErrorRate: 0, apiLostResponseRate: 0 });
    await until(() => h!.leftovers().instances.length === 0 && h!.leftovers().runners.length === 0, 30_000);
    await until(() => allRunners(c, 'lin').every((r) => r.state === 'deleted'), 20_000);
    expect(peak).toBeLessThanOrEqual(8);
    expect(h.received.length).toBeGreaterThan(h.sim.jobs().length * 2); // the duplicates did arrive
    // Each runner either ran a job or ended without an instance because a call failed; none idled for nothing.
    const ran = new Set(h.sim.jobs('completed').map((j) => j.runnerName));
    for (const r of allRunners(c, 'lin').filter((x) => !ran.has(x.name))) {
      const history = c.store
        .recentEvents({ runner: r.name })
        .map((e) => e.reason ?? e.event)
        .join(' | ');
      expect(history).toMatch(/failed|already registered/);
      expect(history).not.toMatch(/runner online|idle timeout/);
    }
  }, 120_000);

  it('repairs missed in_progress and completed webhooks with job status checks', async () => {
    h = await Harness.start({ scaleSets: [{ name: 'lin', max: 3 }], controller: { resyncInterval: 500 } });
    h.accept = (e) => e.action === 'queued';
    const c = await h.startController();
    h.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: LABELS, count: 4, durationMs: 100 });
    await until(() => completed(h!) === 4, 30_000);
    await until(() => c.store.openJobs('lin').length === 0, 20_000);
    await until(() => h!.leftovers().instances.length === 0 && h!.leftovers().runners.length === 0, 20_000);
    expect(h.received.some((e) => e.action === 'completed')).toBe(true);
    expect(c.store.job(h.sim.jobs('completed')[0]!.id)).toMatchObject({ status: 'completed' });
  }, 60_000);

  it('deregisters an orphan registration and deletes an instance without a runner (both directions)', async () => {
    h = await Harness.start({
      scaleSets: [{ name: 'lin', bootstrapTimeout: 1500 }],
      controller: { orphanGracePeriod: 800 },
    });
    // leftovers of an earlier controller: a registration with our name and no instance ...
    const gh = (await import('../github/index.js')).createGitHubClient({
      config: h.config.github,
      logger: (await import('../../test/support/core/reconciler.js')).silent,
    });
    await gh.generateJitConfig(
      { org: 'octo-org' },
      { name: 'lin-orphan01', runnerGroup: 'Default', labels: ['linux'] },
    );
    // ... and an instance with our fleet's tags whose runner never registers
    h.sim.createInstance({
      name: 'lin-stray001',
      tags: { fleet: 'test-fleet', scaleSet: 'lin' },
      registration: {
        mode: 'token',
        url: h.sim.webUrl({ kind: 'org', org: 'octo-org' }),
        token: 'bogus',
        labels: ['linux'],
        runnerGroup: 'Default',
        ephemeral: true,
      },
      bootDelayMs: 60_000,
    });
    // ... and someone else's runner, which must survive
    await gh.generateJitConfig(
      { org: 'octo-org' },
      { name: 'other-team-runner', runnerGroup: 'Default', labels: ['linux'] },
    );
    const c = await h.startController();
    await until(() => h!.leftovers().runners.length === 0 && h!.leftovers().instances.length === 0, 20_000);
    // The simulator has removed both; the controller records each removal once GitHub's or the provider's answer is
    // back, which on a busy machine may be a moment later.
    await c.reconciler.settled();
    expect(h.sim.runners().map((r) => r.name)).toContain('other-team-runner');
    const events = c.readModel.events({ limit: 100 });
    expect(events).toContainEqual(
      expect.objectContaining({ kind: 'registration', runner: 'lin-orphan01', event: 'deleted' }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({ kind: 'instance', runner: 'lin-stray001', event: 'deleted' }),
    );
  }, 60_000);

  it('rests scheduled runner lists while webhooks arrive and the last list agreed, at most two in a row, and still finds a leaked registration', async () => {
    h = await Harness.start({
      scaleSets: [{ name: 'lin', max: 10 }],
      controller: { resyncInterval: 400, orphanGracePeriod: 300 },
    });
    const lists = () => h!.sim.stats().apiCalls.byRoute['GET /orgs/{org}/actions/runners'] ?? 0;
    // Per scheduled resync: whether it listed (the simulator counted a list since the previous one).
    const listed: boolean[] = [];
    let seen = 0;
    const c = await h.startController({
      hooks: {
        onResync: () => {
          const n = lists();
          listed.push(n > seen);
          seen = n;
        },
      },
    });
    // Quiet: no webhook arrives, so every scheduled resync lists.
    await until(() => listed.length >= 4, 10_000);
    expect(listed.slice(1, 4)).toEqual([true, true, true]);

    // Webhooks flowing: a job every 150 ms; meanwhile a registration with our name and no instance appears.
    const flowFrom = listed.length;
    const gh = (await import('../github/index.js')).createGitHubClient({
      config: h.config.github,
      logger: (await import('../../test/support/core/reconciler.js')).silent,
    });
    let flowing = true;
    const flow = (async () => {
      while (flowing) {
        h!.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: LABELS, count: 1, durationMs: 100 });
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    await until(() => listed.length >= flowFrom + 2, 10_000);
    await gh.generateJitConfig(
      { org: 'octo-org' },
      { name: 'lin-leaked01', runnerGroup: 'Default', labels: ['linux'] },
    );
    // Found by a list within three intervals, and deregistered after the grace period, webhooks or not.
    await until(() => !h!.sim.runners().some((r) => r.name === 'lin-leaked01'), 15_000);
    await until(() => listed.length >= flowFrom + 12, 20_000);
    flowing = false;
    await flow;
    const during = listed.slice(flowFrom);
    // Some scheduled lists rested, never three in a row.
    expect(during.filter((l) => !l).length).toBeGreaterThan(0);
    expect(during.map((l) => (l ? '1' : '0')).join('')).not.toContain('000');
    await c.reconciler.settled();
    expect(c.readModel.events({ limit: 500 })).toContainEqual(
      expect.objectContaining({ kind: 'registration', runner: 'lin-leaked01', event: 'deleted' }),
    );
  }, 60_000);

  it('times out a runner that never comes online, removes it, backs off, and shows why', async () => {
    h = await Harness.start({
      scaleSets: [{ name: 'slow', bootstrapTimeout: 800, max: 1, bootDelay: 60_000 }],
      controller: { resyncInterval: 300, failureBackoff: 500 },
    });
    const c = await h.startController();
    h.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: LABELS, count: 1, durationMs: 100 });
    await until(() => c.store.runners('slow').some((r) => r.state === 'bootstrap-timeout'), 20_000);
    await until(() => c.store.deletedRunners('slow').length >= 1, 20_000);
    const timedOut = c.store.deletedRunners('slow')[0]!;
    expect(c.store.recentEvents({ runner: timedOut.name }).map((e) => e.event)).toEqual(
      expect.arrayContaining(['bootstrap-timeout', 'deleted']),
    );
    expect(h.sim.runners().map((r) => r.name)).not.toContain(timedOut.name);
    expect(h.sim.instances({ fleet: 'test-fleet' }).map((i) => i.name)).not.toContain(timedOut.name);
    const view = c.readModel.scaleSets()[0]!;
    expect(view.backoff.failures).toBeGreaterThanOrEqual(1);
    expect(view.backoff.lastFailure).toMatch(/did not come online/);
    // and it keeps trying: a replacement exists (the job is still queued)
    await until(() => c.store.runners('slow').filter((r) => r.state !== 'deleted').length === 1, 20_000);
  }, 60_000);

  it('handles a JIT name that is already registered: removes that registration and creates under a new name', async () => {
    h = await Harness.start({ scaleSets: [{ name: 'lin', max: 2 }] });
    // A previous run planned this runner and registered its name, then died before recording the answer.
    const gh = (await import('../github/index.js')).createGitHubClient({
      config: h.config.github,
      logger: (await import('../../test/support/core/reconciler.js')).silent,
    });
    await gh.generateJitConfig(
      { org: 'octo-org' },
      { name: 'lin-taken001', runnerGroup: 'Default', labels: ['linux', 'x64'] },
    );
    const { Store } = await import('../store/store.js');
    const store = Store.open({ path: h.dbPath, route: () => 'lin' });
    store.insertRunners([{ name: 'lin-taken001', scaleSet: 'lin' }]);
    store.close();
    h.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: LABELS, count: 1, durationMs: 100 });
    const c = await h.startController();
    await until(() => completed(h!) === 1, 30_000);
    await until(() => h!.leftovers().runners.length === 0 && h!.leftovers().instances.length === 0, 20_000);
    const taken = c.store.runner('lin-taken001')!;
    expect(taken.state).toBe('deleted');
    expect(c.store.recentEvents({ runner: 'lin-taken001' }).map((e) => e.reason)).toContain(
      'runner name already registered without a usable config',
    );
    expect(h.sim.jobs('completed')[0]!.runnerName).not.toBe('lin-taken001');
  }, 60_000);
});
