/**
 * High availability on the real control plane: two `runner-fleet start --leader-election` processes with the
 * controller's least-privilege token, each with its own store, behind a Service that routes webhooks to the ready
 * replica only. The leader is killed (SIGKILL) in the middle of a burst while jobs it had heard of still wait for
 * capacity, more jobs arrive while no replica is ready, and more after the takeover. Every job completes; the standby
 * leads within 15 s; no job gets a second runner: every runner pod ran a job, except creates the dead leader had in
 * flight (pods whose Secret it never wrote). A leader whose Lease is taken from it exits with status 1.
 */
import { CoordinationV1Api, CoreV1Api, V1MicroTime } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRunnerOf } from '../../src/core/names.js';
import { PodInformer } from '../../src/kubernetes/pod-informer.js';
import type { KubeFleet } from './fleet-fixture.js';
import {
  ControllerChild,
  freePort,
  jitRegistrations,
  runnersThatRan,
  setupKubeFleet,
  until,
} from './fleet-fixture.js';
import { requireCluster, useTestCluster } from './helpers.js';
import type { ServiceProxy } from './service-proxy.js';
import { startServiceProxy } from './service-proxy.js';

const FLEET = 'k8s-ha';
const SETS = [
  { name: 'haa', labels: ['linux', 'haa'], max: 6, containerMode: 'none' },
  { name: 'hab', labels: ['linux', 'hab'], max: 6, containerMode: 'none' },
] as const;

describe.skipIf(!requireCluster('kubernetes HA'))(
  'kubernetes HA: two controllers, leader killed mid-burst',
  () => {
    const cluster = useTestCluster();
    let kf: KubeFleet;
    let proxy: ServiceProxy;
    let a: ControllerChild;
    let b: ControllerChild;
    const replicas: ControllerChild[] = [];
    /** Runner pods by name: when the API server created them. */
    const pods = new Map<string, { scaleSet: string; createdAt: number }>();
    const started = new Set<string>();
    const informers: PodInformer<{ name: string; createdAt: number }>[] = [];

    const spawn = async (name: string) => {
      const port = await freePort();
      const child = new ControllerChild(kf.replicaArgs(port, `${name}.db`), port, { POD_NAME: name });
      replicas.push(child);
      return child;
    };

    beforeAll(async () => {
      kf = await setupKubeFleet(cluster, {
        fleet: FLEET,
        sets: SETS,
        leaderElection: true,
        onBridgeEvent: (e) => {
          if (e.type === 'started') started.add(e.pod);
        },
      });
      for (const [scaleSet, namespace] of kf.namespaces) {
        const informer = new PodInformer({
          kubeConfig: cluster.kubeConfig(),
          namespace,
          labelSelector: 'runner-fleet.dev/runner',
          project: (pod) => ({
            name: pod.metadata?.name ?? '',
            createdAt: new Date(pod.metadata?.creationTimestamp ?? 0).getTime(),
          }),
        });
        informer.subscribe(({ type, object }) => {
          if (type !== 'deleted' && !pods.has(object.name)) {
            pods.set(object.name, { scaleSet, createdAt: object.createdAt });
          }
        });
        await informer.waitForSync();
        informers.push(informer);
      }
    }, 120_000);

    afterAll(async () => {
      for (const r of replicas) if (r.running) await r.kill();
      await proxy?.close();
      await Promise.all(informers.map((i) => i.stop()));
      await kf?.cleanup();
    }, 60_000);

    it('takes over within 15 s and completes every job without giving any job a second runner', async () => {
      a = await spawn('replica-a');
      await a.waitReady();
      b = await spawn('replica-b');
      await until(async () => (await b.status('/healthz')) === 200, 60_000, 'replica-b to serve /healthz');
      expect(await b.status('/readyz')).toBe(503);
      expect(await kf.leaseHolder()).toMatch(/^replica-a_/);
      proxy = await startServiceProxy([a.url, b.url]);
      expect(proxy.ready()).toEqual([a.url]);
      kf.sim.setWebhook(`${proxy.url}/webhook`);

      const jobs: { id: number; set: string }[] = [];
      const burst = (count: number, sets: readonly (typeof SETS)[number][] = SETS) => {
        for (const set of sets) {
          for (const j of kf.sim.createJobs({
            owner: 'octo-org',
            repo: 'app',
            labels: [...set.labels],
            durationMs: 2_000,
            count,
          })) {
            jobs.push({ id: j.id, set: set.name });
          }
        }
      };
      const done = () => jobs.filter((j) => kf.sim.job(j.id)?.status === 'completed').length;

      burst(20);
      // Mid-burst: some jobs done, the leader has runners busy and jobs waiting for capacity.
      await until(() => done() >= 8, 120_000, 'the first jobs to complete');
      const waiting = jobs.filter((j) => kf.sim.job(j.id)?.status === 'queued').length;
      expect(
        jobs.filter((j) => j.set === 'haa' && kf.sim.job(j.id)?.status === 'queued').length,
      ).toBeGreaterThan(0);
      const killedAt = Date.now();
      await a.kill();
      // The Service routes to the killed replica until its next probe fails (<= 0.5 s): webhooks sent before that get
      // 502, not the 503 of "no replica ready" this part of the test is about.
      await until(
        () => !proxy.ready().includes(a.url),
        5_000,
        'the Service to stop routing to the killed replica',
      );
      // Only `hab` gets jobs from here on: `haa`'s waiting jobs are known to no one but the dead leader and GitHub's
      // delivery log, so nothing but the new leader's catch-up can get them runners (a new `haa` job would: runners
      // are not bound to jobs, and its runner would take the oldest waiting one).
      burst(5, [SETS[1]]); // webhooks nobody is ready to receive
      const takeoverMs = await kf.leaderSince('replica-b_', killedAt, 30_000);
      await b.waitReady(60_000);
      const readyMs = Date.now() - killedAt;
      burst(5, [SETS[1]]);
      await until(
        () => done() === jobs.length,
        180_000,
        'every job to complete',
        () => ({ done: done(), of: jobs.length, refused: proxy.refused }),
      );
      console.log(
        `k8s HA: killed the leader with ${waiting} jobs waiting; Lease taken ${takeoverMs} ms and ready ` +
          `${readyMs} ms after the kill; ${proxy.refused} webhooks refused while no replica was ready`,
      );
      expect(takeoverMs).toBeLessThan(15_000);
      expect(proxy.refused).toBeGreaterThan(0);
      expect(jobs.filter((j) => kf.sim.job(j.id)?.conclusion !== 'success')).toEqual([]);

      for (const set of SETS) {
        const count = jobs.filter((j) => j.set === set.name).length;
        const ran = runnersThatRan(kf.sim, set.name);
        expect(ran.size, `${set.name}: each job ran on its own runner`).toBe(count);
        const setPods = [...pods].filter(([, p]) => p.scaleSet === set.name);
        // A pod that ran no job is a create the dead leader had in flight: its pod made, its Secret never written.
        const idle = setPods.filter(([name]) => !ran.has(name));
        for (const [name, p] of idle) {
          expect(started.has(name), `${name} ran a runner but no job`).toBe(false);
          expect(p.createdAt, `${name} was created after the kill`).toBeLessThanOrEqual(killedAt + 1_000);
        }
        expect(idle.length).toBeLessThanOrEqual(set.max);
        // Registrations: one per pod, plus at most the leader's creates in flight before their pod existed.
        const registered = jitRegistrations(kf.sim, set.name);
        expect(registered.length - setPods.length).toBeLessThanOrEqual(set.max);
        expect(registered.length).toBeLessThanOrEqual(count + set.max);
      }
    }, 300_000);

    it('cleans up after the run; the leader whose Lease is taken exits with status 1', async () => {
      const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
      let left = { pods: -1, runners: -1 };
      await until(
        async () => {
          let n = 0;
          for (const namespace of kf.namespaces.values()) {
            n += (await core.listNamespacedPod({ namespace, labelSelector: 'runner-fleet.dev/runner' })).items
              .length;
          }
          left = {
            pods: n,
            runners: kf.sim.runners().filter((r) => SETS.some((s) => isRunnerOf(s.name, r.name))).length,
          };
          return left.pods === 0 && left.runners === 0;
        },
        90_000,
        'no runner pod or registration left',
        () => left,
      );

      // Someone else writes the Lease: the leader cannot renew, stops acting and exits non-zero.
      const leases = cluster.kubeConfig().makeApiClient(CoordinationV1Api);
      const lease = await leases.readNamespacedLease({
        name: kf.leaseName,
        namespace: kf.controllerNamespace,
      });
      expect(lease.spec?.holderIdentity).toMatch(/^replica-b_/);
      await leases.replaceNamespacedLease({
        name: kf.leaseName,
        namespace: kf.controllerNamespace,
        body: {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: 'intruder',
            renewTime: new V1MicroTime(Date.now()),
            leaseDurationSeconds: 60,
          },
        },
      });
      const t0 = Date.now();
      const code = await Promise.race([b.exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
      expect(code).toBe(1);
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(b.stderr.text()).toContain('leadership lost');
    }, 150_000);
  },
);
