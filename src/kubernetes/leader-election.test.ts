import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { LEADER_ELECTION_DEFAULTS, LeaderElectionError, LeaderElector } from './leader-election.js';

const kubeConfig = new KubeConfig();
kubeConfig.loadFromOptions({
  clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
  users: [{ name: 'u' }],
  contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
  currentContext: 'c',
});
const base = { kubeConfig, namespace: 'ns', name: 'lease', identity: 'me', onStartedLeading: () => {} };

describe('leader election timings', () => {
  it('the defaults take over well within 15 s of a leader dying, and step down before a successor may start', () => {
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = LEADER_ELECTION_DEFAULTS;
    const jitteredRetry = retryPeriodMs * 1.2;
    // Noticed up to one retry late, the lease waited out, then up to one retry until the next attempt.
    expect(jitteredRetry + leaseDurationMs + jitteredRetry).toBeLessThanOrEqual(12_000);
    expect(renewDeadlineMs).toBeLessThan(leaseDurationMs);
    expect(retryPeriodMs).toBeLessThan(renewDeadlineMs);
  });

  it('refuses timings under which two leaders could overlap', () => {
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 5_000, renewDeadlineMs: 5_000 })).toThrow(
      LeaderElectionError,
    );
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 1_000, retryPeriodMs: 1_000 })).toThrow(
      /retryPeriod < renewDeadline < leaseDuration/,
    );
    expect(new LeaderElector(base).isLeader).toBe(false);
  });

  it('an elector that cannot reach the API server never leads and stops when asked', async () => {
    let led = false;
    const elector = new LeaderElector({
      ...base,
      retryPeriodMs: 20,
      renewDeadlineMs: 50,
      leaseDurationMs: 100,
      onStartedLeading: () => {
        led = true;
      },
    });
    await elector.run(AbortSignal.timeout(300));
    expect(led).toBe(false);
    expect(elector.isLeader).toBe(false);
  });
});
