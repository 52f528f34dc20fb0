/**
 * Leader handover of a `discovery: scale-set` scale set on the real control plane: two (then three)
 * `runner-fleet start --leader-election` processes with the controller's least-privilege token, each with its own
 * store, against the simulator's runner scale set protocol. The simulator's session log (`/_sim/scalesets`) says
 * which listener held the scale set's message session, when it ended and how, and which session creations it
 * answered 409.
 *
 * 1. Only the leader holds the session; a follower makes no Actions service call at all.
 * 2. Jobs are served, one runner per job, never more runners than max.
 * 3. The leader is killed (SIGKILL) while jobs it acknowledged wait for capacity: its session is not deleted and
 *    lives until the simulator expires it. The standby takes the Lease, is refused (409, counted and recorded as a
 *    `session-conflict` event) while the dead leader's session lives, opens its own once it expired, serves the jobs
 *    left waiting (which its own store never heard of) and then new ones.
 * 4. The new leader is stopped (SIGTERM): it deletes its session, so the next leader opens one without a 409.
 * Nothing is left behind: no runner registration, no runner pod, no session but the last leader's until it stops.
 */
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRunnerOf } from '../../src/core/names.js';
import { PodInformer } from '../../src/kubernetes/pod-informer.js';
import type { SimScaleSetView } from '../../src/sim/github/index.js';
import type { KubeFleet } from './fleet-fixture.js';
import { ControllerChild, freePort, runnersThatRan, setupKubeFleet, until } from './fleet-fixture.js';
import { requireCluster, useTestCluster } from './helpers.js';

const FLEET = 'k8s-ss-ha';
const SET = {
  name: 'ssq',
  labels: ['ssq'],
  max: 3,
  containerMode: 'none',
  discovery: 'scale-set',
} as const;
/**
 * How long a message session lives after its last call. Longer than a takeover (the Lease lasts 9 s; the new leader
 * then catches up, prepares and resyncs before its listener starts), so the new leader meets the dead one's session.
 */
const SESSION_TIMEOUT_MS = 35_000;
const SESSIONS_ROUTE = /^\{actions\} POST \S*\/runnerscalesets\/\{id\}\/sessions$/;

interface ApiCall {
  readonly route: string;
  readonly status: string;
  readonly count: number;
}

describe.skipIf(!requireCluster('kubernetes scale-set handover'))(
  'kubernetes HA: a scale-set scale set’s message session moves with the leader',
  () => {
    const cluster = useTestCluster();
    let kf: KubeFleet;
    const replicas: ControllerChild[] = [];
    let informer: PodInformer<{ name: string; live: boolean }> | undefined;
    /** Runner pods that exist and neither ended nor are being deleted. */
    const livePods = new Set<string>();
    const most = { pods: 0, registrations: 0 };
    let sampler: NodeJS.Timeout | undefined;
    const jobs: number[] = [];

    const spawn = async (name: string) => {
      const port = await freePort();
      const child = new ControllerChild(
        kf.replicaArgs(port, `${name}.db`),
        port,
        // The heap limit as the Helm chart sets it: the controller runs in this one process (no re-run of itself
        // with the limit), so its pid is the one in its session's owner name.
        { POD_NAME: name, NODE_OPTIONS: '--max-old-space-size=160' },
      );
      replicas.push(child);
      return child;
    };
    /** The session owner name a replica's listener gives: `<hostname>-<pid>`. */
    const owner = (c: ControllerChild) => `${hostname()}-${c.child.pid}`;
    const scaleSet = (): SimScaleSetView | undefined => kf.sim.scaleSets().find((s) => s.name === SET.name);
    /** The replica's Actions service calls, from its /metrics. */
    const actionsCalls = async (c: ControllerChild): Promise<ApiCall[]> => {
      const text = await (await fetch(`${c.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
      const out: ApiCall[] = [];
      for (const line of text.split('\n')) {
        if (!line.startsWith('runner_fleet_github_api_calls_total{')) continue;
        const route = /route="([^"]*)"/.exec(line)?.[1] ?? '';
        if (!route.startsWith('{actions}')) continue;
        out.push({
          route,
          status: /status="([^"]*)"/.exec(line)?.[1] ?? '',
          count: Number(line.slice(line.lastIndexOf(' ') + 1)),
        });
      }
      return out;
    };
    const sessionConflicts = async (c: ControllerChild) =>
      (await actionsCalls(c))
        .filter((x) => SESSIONS_ROUTE.test(x.route) && x.status === '409')
        .reduce((n, x) => n + x.count, 0);
    const events = async (c: ControllerChild) =>
      (
        (await (
          await fetch(`${c.url}/api/v1/events?scaleSet=${SET.name}&limit=500`, {
            signal: AbortSignal.timeout(5_000),
          })
        ).json()) as { events: { event: string; reason: string | null }[] }
      ).events;
    /** Waits for a log line: the controller's log is written asynchronously, after what it reports. */
    const logged = (c: ControllerChild, text: string) =>
      until(() => c.stdout.text().includes(text), 10_000, `the log line "${text}"`);
    const registrations = () => kf.sim.runners().filter((r) => isRunnerOf(SET.name, r.name));
    const queue = (count: number) => {
      for (const j of kf.sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: [...SET.labels],
        durationMs: 1_500,
        count,
      }))
        jobs.push(j.id);
    };
    const allDone = async (what: string) =>
      until(
        () => jobs.every((id) => kf.sim.job(id)?.status === 'completed'),
        180_000,
        what,
        () => ({
          queued: jobs.filter((id) => kf.sim.job(id)?.status === 'queued').length,
          running: jobs.filter((id) => kf.sim.job(id)?.status === 'in_progress').length,
          pods: livePods.size,
          session: scaleSet()?.session?.ownerName ?? null,
        }),
      );

    beforeAll(async () => {
      kf = await setupKubeFleet(cluster, {
        fleet: FLEET,
        sets: [SET],
        leaderElection: true,
        simulator: { scaleSetSessionTimeoutMs: SESSION_TIMEOUT_MS, scaleSetPollTimeoutMs: 5_000 },
      });
      informer = new PodInformer({
        kubeConfig: cluster.kubeConfig(),
        namespace: kf.namespaces.get(SET.name)!,
        labelSelector: 'runner-fleet.dev/runner',
        project: (pod) => ({
          name: pod.metadata?.name ?? '',
          live:
            pod.metadata?.deletionTimestamp === undefined &&
            (pod.status?.phase === 'Pending' || pod.status?.phase === 'Running' || !pod.status?.phase),
        }),
      });
      informer.subscribe(({ type, object }) => {
        if (type !== 'deleted' && object.live) livePods.add(object.name);
        else livePods.delete(object.name);
      });
      await informer.waitForSync();
      sampler = setInterval(() => {
        most.pods = Math.max(most.pods, livePods.size);
        most.registrations = Math.max(most.registrations, registrations().length);
      }, 50);
    }, 120_000);

    afterAll(async () => {
      clearInterval(sampler);
      for (const r of replicas) if (r.running) await r.kill();
      await informer?.stop();
      await kf?.cleanup();
    }, 60_000);

    let a: ControllerChild;
    let b: ControllerChild;

    it('only the leader holds the message session; the follower makes no Actions service call; jobs are served', async () => {
      a = await spawn('replica-a');
      await a.waitReady();
      b = await spawn('replica-b');
      await until(async () => (await b.status('/healthz')) === 200, 60_000, 'replica-b to serve /healthz');
      expect(await b.status('/readyz')).toBe(503);
      expect(await kf.leaseHolder()).toMatch(/^replica-a_/);
      await until(() => scaleSet()?.session != null, 60_000, 'the leader’s message session');

      queue(6);
      await allDone('the first jobs to complete');

      const view = scaleSet()!;
      expect(view.session?.ownerName).toBe(owner(a));
      expect(view.sessions.map((s) => s.ownerName)).toEqual([owner(a)]);
      expect(view.conflicts).toEqual([]);
      // The leader talked to the Actions service; the follower never did.
      expect((await actionsCalls(a)).filter((x) => SESSIONS_ROUTE.test(x.route))).toEqual([
        expect.objectContaining({ status: '200', count: 1 }),
      ]);
      expect(await actionsCalls(b)).toEqual([]);
      expect(b.stdout.text()).not.toMatch(/message session/);
      expect(runnersThatRan(kf.sim, SET.name).size).toBe(jobs.length);
    }, 240_000);

    it('after a SIGKILL mid-burst the new leader gets 409 until the dead leader’s session expires, then opens its own and serves the jobs left waiting and new ones', async () => {
      // Mid-burst: the leader has acknowledged every job, runs some and has others waiting for capacity.
      const waitingBefore = jobs.length;
      queue(6);
      await until(
        () =>
          scaleSet()!.unacknowledged === 0 &&
          jobs.slice(waitingBefore).some((id) => kf.sim.job(id)?.status === 'in_progress') &&
          jobs.slice(waitingBefore).filter((id) => kf.sim.job(id)?.status === 'queued').length >= 2,
        60_000,
        'jobs running and jobs waiting',
      );
      const killedAt = Date.now();
      await a.kill();
      const waitingAtKill = jobs.filter((id) => kf.sim.job(id)?.status === 'queued').length;
      const takeoverMs = await kf.leaderSince('replica-b_', killedAt, 30_000);
      expect(takeoverMs).toBeLessThan(15_000);
      await b.waitReady(60_000);

      // Refused while the dead leader's session lives, and it says so: metric, event, log.
      await until(async () => (await sessionConflicts(b)) > 0, 60_000, 'replica-b to meet the stale session');
      expect(scaleSet()!.session?.ownerName).toBe(owner(a));
      await until(
        async () => (await events(b)).some((e) => e.event === 'session-conflict'),
        30_000,
        'a session-conflict event',
      );
      await logged(b, 'already has an active session');

      await until(
        () => scaleSet()?.session?.ownerName === owner(b),
        SESSION_TIMEOUT_MS + 60_000,
        'replica-b’s own session',
        () => ({ session: scaleSet()?.session ?? null, conflicts: scaleSet()?.conflicts.length }),
      );
      const openedMs = Date.now() - killedAt;
      // The jobs the dead leader had acknowledged and not yet served: no message names them again, and this
      // replica's store never heard of them; the statistics' waiting jobs stand for them.
      await allDone('the jobs waiting at the kill to complete');
      queue(3);
      await allDone('the jobs queued during and after the handover to complete');

      const view = scaleSet()!;
      const [old, mine, ...more] = view.sessions;
      expect(more).toEqual([]);
      expect(old).toMatchObject({ ownerName: owner(a), end: 'expired' });
      expect(mine).toMatchObject({ ownerName: owner(b), end: null });
      // The dead leader's session lived its timeout after the kill (its long poll's connection closed with it).
      expect(old!.endedAt!).toBeGreaterThanOrEqual(killedAt + SESSION_TIMEOUT_MS - 1_000);
      expect(mine!.openedAt).toBeGreaterThanOrEqual(old!.endedAt!);
      // Every refusal went to the new leader, for the dead leader's session, while it lived.
      expect(view.conflicts.length).toBeGreaterThan(0);
      for (const c of view.conflicts) {
        expect(c).toMatchObject({ ownerName: owner(b), activeOwner: owner(a) });
        expect(c.at).toBeLessThan(old!.endedAt!);
      }
      expect(await sessionConflicts(b)).toBe(view.conflicts.length);
      await logged(b, 'message session opened after the stale one expired');
      console.log(
        `k8s scale-set handover (SIGKILL with ${waitingAtKill} jobs waiting): Lease taken ${takeoverMs} ms and own session opened ${openedMs} ms ` +
          `after the kill (session timeout ${SESSION_TIMEOUT_MS} ms), ${view.conflicts.length} session conflicts`,
      );
      expect(runnersThatRan(kf.sim, SET.name).size).toBe(jobs.length);
    }, 300_000);

    it('after a SIGTERM the leader’s session is deleted and the next leader opens its own without a conflict', async () => {
      const c = await spawn('replica-c');
      await until(async () => (await c.status('/healthz')) === 200, 60_000, 'replica-c to serve /healthz');
      expect(await actionsCalls(c)).toEqual([]);

      const stoppedAt = Date.now();
      expect(await b.stop()).toBe(0);
      await logged(b, 'message session deleted');
      await until(
        () => scaleSet()?.session?.ownerName === owner(c),
        60_000,
        'replica-c’s session',
        () => ({ session: scaleSet()?.session ?? null }),
      );
      const openedMs = Date.now() - stoppedAt;
      expect(openedMs).toBeLessThan(SESSION_TIMEOUT_MS);
      queue(3);
      await allDone('the jobs queued after the graceful handover to complete');

      const view = scaleSet()!;
      expect(view.sessions.map((s) => [s.ownerName, s.end])).toEqual([
        [owner(a), 'expired'],
        [owner(b), 'deleted'],
        [owner(c), null],
      ]);
      const [, deleted, mine] = view.sessions;
      expect(deleted!.endedAt!).toBeGreaterThanOrEqual(stoppedAt);
      expect(mine!.openedAt).toBeGreaterThanOrEqual(deleted!.endedAt!);
      expect(view.conflicts.filter((x) => x.ownerName === owner(c))).toEqual([]);
      expect(await sessionConflicts(c)).toBe(0);
      console.log(`k8s scale-set handover (SIGTERM): own session opened ${openedMs} ms after the stop`);

      // Every job once, on its own runner of the scale set; never more than max at a time.
      expect(jobs.filter((id) => kf.sim.job(id)?.conclusion !== 'success')).toEqual([]);
      for (const id of jobs) expect(isRunnerOf(SET.name, kf.sim.job(id)!.runnerName ?? '')).toBe(true);
      expect(runnersThatRan(kf.sim, SET.name).size).toBe(jobs.length);
      expect(most.registrations).toBeGreaterThan(0);
      expect(most.registrations).toBeLessThanOrEqual(SET.max);
      expect(most.pods).toBeLessThanOrEqual(SET.max);

      // Nothing left: no registration, no runner pod; at stop the last session is deleted too.
      await until(
        () => registrations().length === 0 && livePods.size === 0,
        90_000,
        'no runner registration or pod left',
        () => ({ registrations: registrations().map((r) => r.name), pods: [...livePods] }),
      );
      expect(scaleSet()!.unacknowledged).toBe(0);
      expect(await c.stop()).toBe(0);
      expect(scaleSet()!.session).toBeNull();
      expect(scaleSet()!.sessions.at(-1)).toMatchObject({ ownerName: owner(c), end: 'deleted' });
    }, 300_000);
  },
);
