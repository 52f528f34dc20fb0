/**
 * Leader election on a real Lease, with the controller's least-privilege token: one candidate leads at a time,
 * a clean shutdown hands over within a retry period, and when the leader's process is killed another takes over
 * within 15 seconds with the default timings. A stopping leader keeps (and renews) the Lease until its work has
 * stopped, and leaves it to expire when the work does not stop in time.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LeaderElectionOptions } from '../../src/kubernetes/leader-election.js';
import { LeaderElector } from '../../src/kubernetes/leader-election.js';
import { LogSink } from '../support/log-sink.js';
import { startFaultProxy } from './fault-proxy.js';
import { createTestNamespace, requireCluster, useTestCluster, waitFor } from './helpers.js';
import type { ControllerIdentity } from './rbac-fixture.js';
import { installLeaseHolder, serviceAccountKubeConfig } from './rbac-fixture.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/elector.ts', import.meta.url));

interface Candidate {
  readonly identity: string;
  readonly child: ChildProcess;
  readonly events: Array<{ event: string; at: number; identity?: string }>;
}

describe.skipIf(!requireCluster('leader election'))('leader election', () => {
  const cluster = useTestCluster();
  let namespace: string;
  let controller: ControllerIdentity;
  let token: string;
  const lease = `le-${randomBytes(3).toString('hex')}`;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    namespace = await createTestNamespace(cluster, 'rf-le');
    controller = await installLeaseHolder(cluster, namespace, lease);
    token = (await serviceAccountKubeConfig(cluster, namespace, controller.name)).token;
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await cluster
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => undefined);
  });

  function candidate(identity: string, leaseName = lease): Candidate {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: {
        ...process.env,
        KUBE_SERVER: cluster.server,
        KUBE_CA: cluster.caCertPath,
        KUBE_TOKEN: token,
        NAMESPACE: namespace,
        LEASE: leaseName,
        IDENTITY: identity,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const events: Candidate['events'] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        events.push(JSON.parse(line));
      } catch {
        // not ours
      }
    });
    return { identity, child, events };
  }

  const leads = (c: Candidate) => c.events.some((e) => e.event === 'leading');
  const namespaces: string[] = [];

  afterAll(async () => {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await Promise.all(namespaces.map((name) => core.deleteNamespace({ name }).catch(() => undefined)));
  });

  /** A namespace of its own whose controller Role grants exactly one Lease, and that Lease's name. */
  async function ownLease(prefix: string) {
    const ns = await createTestNamespace(cluster, prefix);
    namespaces.push(ns);
    const name = `${lease}-${prefix}`;
    const { kubeConfig } = await installLeaseHolder(cluster, ns, name);
    const holder = async () =>
      (
        await cluster
          .kubeConfig()
          .makeApiClient(CoordinationV1Api)
          .readNamespacedLease({ name, namespace: ns })
      ).spec?.holderIdentity ?? '';
    return { ns, name, kubeConfig, holder };
  }

  /** Short timings: a lease of 3 s, so waiting one out is visible and cheap. */
  const SHORT = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const until = (signal: AbortSignal) =>
    new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));

  it('two in-process candidates: exactly one leads at any time; a clean stop hands over at once, not at lease expiry', async () => {
    // Its own namespace: the controller Role there grants exactly this Lease.
    const ns = await createTestNamespace(cluster, 'rf-le-fast');
    const name = `${lease}-fast`;
    const fast = await installLeaseHolder(cluster, ns, name);
    const leading = new Set<string>();
    const overlaps: string[] = [];
    const make = (identity: string) =>
      new LeaderElector({
        kubeConfig: fast.kubeConfig,
        namespace: ns,
        name,
        identity,
        leaseDurationMs: 6_000,
        renewDeadlineMs: 4_000,
        retryPeriodMs: 300,
        onStartedLeading: () => {
          leading.add(identity);
          if (leading.size > 1) overlaps.push([...leading].join(','));
        },
        onStoppedLeading: () => leading.delete(identity),
      });
    const a = make('a');
    const b = make('b');
    const stopA = new AbortController();
    const stopB = new AbortController();
    const runA = a.run(stopA.signal);
    const runB = b.run(stopB.signal);
    await waitFor('a leader', async () => leading.size === 1);
    const first = [...leading][0] as string;
    await new Promise((r) => setTimeout(r, 7_000)); // longer than the lease: the leader keeps renewing it
    expect([...leading]).toEqual([first]);
    expect(a.isLeader !== b.isLeader).toBe(true);

    const handoverStart = Date.now();
    if (first === 'a') stopA.abort();
    else stopB.abort();
    await waitFor('the other candidate to lead', async () => leading.size === 1 && !leading.has(first), {
      intervalMs: 20,
    });
    // Released, not expired: well before the 6 s lease could have run out.
    expect(Date.now() - handoverStart).toBeLessThan(4_000);
    stopA.abort();
    stopB.abort();
    await Promise.all([runA, runB]);
    expect(overlaps).toEqual([]);

    const record = await cluster
      .kubeConfig()
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name, namespace: ns });
    expect(record.spec?.leaseTransitions).toBe(1);
    await cluster.kubeConfig().makeApiClient(CoreV1Api).deleteNamespace({ name: ns });
  }, 60_000);

  /**
   * Candidate a, with its own work and options, leads on a Lease of its own (short timings); candidate b stands by,
   * has seen a lead, and records when it starts leading itself.
   */
  async function leaderAndStandby(
    prefix: string,
    options: Pick<LeaderElectionOptions, 'onStartedLeading'> & Partial<LeaderElectionOptions>,
  ) {
    const { ns, name, kubeConfig, holder } = await ownLease(prefix);
    const common = { kubeConfig, namespace: ns, name, ...SHORT };
    const standby = { leadAt: 0 };
    const a = new LeaderElector({ ...common, identity: 'a', ...options });
    const b = new LeaderElector({
      ...common,
      identity: 'b',
      onStartedLeading: () => {
        standby.leadAt = Date.now();
      },
    });
    const stopA = new AbortController();
    const stopB = new AbortController();
    const runA = a.run(stopA.signal);
    await waitFor('a to lead', async () => a.isLeader);
    const runB = b.run(stopB.signal);
    await waitFor('b to see a lead', async () => b.leader === 'a');
    return {
      a,
      holder,
      standby,
      /** Stops a (as SIGTERM would); resolves when its run() has returned. */
      stopA: () => {
        stopA.abort();
        return runA;
      },
      stopB: () => {
        stopB.abort();
        return runB;
      },
    };
  }

  it('a stopping leader keeps the Lease, renewed past its duration, until its work has stopped; then releases it', async () => {
    // The leader's work takes longer to stop than the lease lasts (in-flight creates finishing).
    const STOP_MS = 4_500;
    let workStoppedAt = 0;
    const { holder, standby, stopA, stopB } = await leaderAndStandby('rf-le-stop', {
      onStartedLeading: async (signal) => {
        await until(signal);
        await sleep(STOP_MS);
        workStoppedAt = Date.now();
      },
    });

    const stoppedAt = Date.now();
    const runA = stopA();
    // Still a's while its work stops, also after the lease it had at the stop would have run out.
    await sleep(SHORT.leaseDurationMs + 500);
    expect(workStoppedAt).toBe(0);
    expect(await holder()).toBe('a');
    expect(standby.leadAt).toBe(0);

    await runA;
    expect(workStoppedAt).toBeGreaterThanOrEqual(stoppedAt + STOP_MS);
    await waitFor('b to lead', async () => standby.leadAt > 0, { intervalMs: 20, timeoutMs: 10_000 });
    expect(standby.leadAt).toBeGreaterThanOrEqual(workStoppedAt);
    // Released once stopped, not expired: b leads within a retry period or so, not a lease duration later.
    expect(standby.leadAt - workStoppedAt).toBeLessThan(1_500);
    await stopB();
  }, 60_000);

  it('a leader stopped while its renewal is written but unanswered still releases the Lease', async () => {
    const { ns, name, kubeConfig, holder } = await ownLease('rf-le-inflight');
    const proxy = await startFaultProxy(cluster.server, cluster.caCert);
    const logs = new LogSink();
    try {
      const a = new LeaderElector({
        kubeConfig: proxy.kubeConfig(kubeConfig.getCurrentUser()?.token ?? ''),
        namespace: ns,
        name,
        identity: 'a',
        ...SHORT,
        logger: pino({ level: 'info' }, logs),
        onStartedLeading: (signal) => until(signal),
      });
      const stop = new AbortController();
      const run = a.run(stop.signal);
      await waitFor('a to lead', async () => a.isLeader);
      let letGo = () => {};
      // The next renewal reaches the API server and changes the Lease; its answer (the new version) is held back.
      await proxy.holdNextAnswer('PUT', `/leases/${name}`, new Promise<void>((r) => (letGo = r)));
      stop.abort();
      await run;
      letGo();
      // The release must not be refused for the version a never saw: the Lease is free at once, not left to expire.
      expect(logs.text()).toMatch(/lease released/);
      expect(logs.text()).not.toMatch(/release failed/);
      expect(await holder()).toBe('');
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it('a leader whose work does not stop within stopTimeoutMs does not release the Lease but lets it expire, and says why', async () => {
    const logs = new LogSink();
    let unstick = () => {};
    const stuck = new Promise<void>((resolve) => (unstick = resolve));
    let aStopped = false;
    const { a, holder, standby, stopA, stopB } = await leaderAndStandby('rf-le-stuck', {
      stopTimeoutMs: 1_000,
      logger: pino({ level: 'info' }, logs),
      onStartedLeading: async (signal) => {
        await until(signal);
        await stuck;
      },
      onStoppedLeading: () => {
        aStopped = true;
      },
    });
    try {
      const stoppedAt = Date.now();
      // run() gives up on the stuck work after the bound, without releasing.
      await stopA();
      const gaveUpAt = Date.now();
      expect(gaveUpAt - stoppedAt).toBeGreaterThanOrEqual(1_000);
      expect(gaveUpAt - stoppedAt).toBeLessThan(2_500);
      expect(aStopped).toBe(true);
      expect(a.isLeader).toBe(false);
      expect(await holder()).toBe('a');
      expect(logs.text()).toMatch(/did not stop in time; the lease is not released but left to expire/);
      expect(logs.text()).not.toMatch(/lease released/);

      await waitFor('b to lead', async () => standby.leadAt > 0, { intervalMs: 20, timeoutMs: 15_000 });
      // Renewed until the bound (at most a retry before it), then the whole lease duration waited out.
      expect(standby.leadAt - stoppedAt).toBeGreaterThanOrEqual(
        1_000 - SHORT.retryPeriodMs * 1.2 + SHORT.leaseDurationMs - 200,
      );
    } finally {
      unstick();
      await stopB();
    }
  }, 60_000);

  it('a leader whose stopped work abandoned calls (keep-lease) leaves the Lease to expire at once, and says why', async () => {
    const logs = new LogSink();
    const { a, holder, standby, stopA, stopB } = await leaderAndStandby('rf-le-keep', {
      logger: pino({ level: 'info' }, logs),
      onStartedLeading: async (signal) => {
        await until(signal);
        return 'keep-lease' as const;
      },
    });
    try {
      const stoppedAt = Date.now();
      // run() returns as soon as the work has stopped: no waiting for a timeout, no release.
      await stopA();
      expect(Date.now() - stoppedAt).toBeLessThan(1_000);
      expect(a.isLeader).toBe(false);
      expect(await holder()).toBe('a');
      expect(logs.text()).toMatch(/abandoned calls that did not end; the lease is left to expire/);
      expect(logs.text()).not.toMatch(/lease released/);
      await waitFor('b to lead', async () => standby.leadAt > 0, { intervalMs: 20, timeoutMs: 15_000 });
      // The whole lease duration waited out, as after a crash.
      expect(standby.leadAt - stoppedAt).toBeGreaterThanOrEqual(
        SHORT.leaseDurationMs - SHORT.retryPeriodMs * 1.2,
      );
    } finally {
      await stopB();
    }
  }, 60_000);

  it('kill -9 the leader: the other process takes over within 15 s (default timings)', async () => {
    const a = candidate('replica-a');
    await waitFor('replica-a to lead', async () => leads(a), { timeoutMs: 30_000 });
    const b = candidate('replica-b');
    await waitFor(
      'replica-b to see replica-a lead',
      async () => b.events.some((e) => e.event === 'leader' && e.identity === 'replica-a'),
      { timeoutMs: 30_000 },
    );
    await new Promise((r) => setTimeout(r, 3_000));
    expect(leads(b)).toBe(false);

    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await waitFor('replica-b to take over', async () => leads(b), { timeoutMs: 20_000, intervalMs: 50 });
    const tookOver = (b.events.find((e) => e.event === 'leading')?.at ?? Infinity) - killedAt;
    expect(tookOver).toBeLessThan(15_000);
    console.log(`leader election: takeover ${tookOver} ms after SIGKILL of the leader`);

    // A clean shutdown releases the Lease for the next one.
    b.child.kill('SIGTERM');
    await waitFor('replica-b to exit', async () => b.child.exitCode !== null, { timeoutMs: 10_000 });
    const record = await cluster
      .kubeConfig()
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: lease, namespace });
    expect(record.spec?.holderIdentity ?? '').toBe('');
  }, 90_000);
});
