/** Builders shared by the planner's unit and property tests. */
import type { FleetConfig, ScaleSetConfig } from '../../../src/core/fleet-config.js';
import type { Action, RunnerSnapshot, ScaleSetSnapshot } from '../../../src/core/plan-types.js';
import type { InstanceState } from '../../../src/providers/provider.js';
import type { GitHubRunner } from '../../../src/core/types.js';

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;

export function scaleSetConfig(over: Partial<ScaleSetConfig> = {}): ScaleSetConfig {
  return {
    name: 'linux',
    scope: { org: 'octo-org' },
    runnerGroup: 'Default',
    labels: ['linux', 'x64'],
    minIdle: 0,
    max: 10,
    ephemeral: true,
    registration: 'jit',
    priority: 0,
    bootstrapTimeout: 10 * MINUTE,
    idleTimeout: 5 * MINUTE,
    provider: { kind: 'sim' },
    ...over,
  };
}

export const timings: FleetConfig['controller'] = {
  resyncInterval: 30 * SECOND,
  orphanGracePeriod: 2 * MINUTE,
  failureBackoff: 5 * SECOND,
  concurrency: 32,
};

export function fleetConfig(sets: ScaleSetConfig[], controller = timings): FleetConfig {
  return {
    name: 'runner-fleet',
    github: {
      url: 'https://github.com',
      apiUrl: 'https://api.github.com',
      ghes: false,
      auth: { token: 'x' },
    },
    webhook: { secret: 'x' },
    server: { host: '127.0.0.1', port: 0 },
    store: { path: ':memory:' },
    controller,
    scaleSets: sets,
  };
}

export function runner(over: Partial<RunnerSnapshot> & { name: string }): RunnerSnapshot {
  return {
    scaleSet: 'linux',
    state: 'starting',
    reason: null,
    githubId: null,
    createdAt: 0,
    stateChangedAt: 0,
    instanceDeletedAt: null,
    registrationDeletedAt: null,
    job: null,
    inFlight: false,
    ...over,
  };
}

export function ghRunner(name: string, over: Partial<GitHubRunner> & { firstSeenAt?: number } = {}) {
  return {
    id: over.id ?? hash(name),
    name,
    status: over.status ?? ('online' as const),
    busy: over.busy ?? false,
    labels: [],
    firstSeenAt: over.firstSeenAt ?? 0,
  };
}

export function instance(
  name: string,
  state: InstanceState,
  observedAt: number,
  createdAt = 0,
  scaleSet = 'linux',
) {
  return { name, fleet: 'runner-fleet', scaleSet, state, createdAt, observedAt };
}

export function hash(s: string): number {
  let h = 7;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) % 1_000_000_007;
  return h;
}

export function snapshot(over: Partial<ScaleSetSnapshot> = {}): ScaleSetSnapshot {
  return {
    name: 'linux',
    runners: [],
    jobs: [],
    github: { at: null, runners: new Map() },
    instances: { at: null, items: new Map() },
    backoff: { failures: 0, until: 0 },
    ...over,
  };
}

export function byType<T extends Action['type']>(
  actions: readonly Action[],
  type: T,
): Extract<Action, { type: T }>[] {
  return actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
}
