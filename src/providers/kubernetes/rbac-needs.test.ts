import { describe, expect, it } from 'vitest';
import type { ScaleSetConfig } from '../../config/types.js';
import { controllerNeeds, kubernetesRunners } from './rbac-needs.js';

function set(
  name: string,
  provider: Record<string, unknown>,
  extra: Partial<ScaleSetConfig> = {},
): ScaleSetConfig {
  return {
    name,
    scope: { org: 'o' },
    runnerGroup: 'Default',
    labels: ['x'],
    minIdle: 0,
    max: 1,
    ephemeral: true,
    registration: 'jit',
    priority: 0,
    bootstrapTimeout: 1,
    idleTimeout: 1,
    provider: provider as ScaleSetConfig['provider'],
    ...extra,
  };
}

const fleet = {
  name: 'f',
  scaleSets: [
    set(
      'kube',
      { kind: 'kubernetes', namespace: 'ci', containerMode: 'kubernetes' },
      {
        identity: { aws: { roleArn: 'arn:aws:iam::123456789012:role/r' } },
      },
    ),
    set('plain', { kind: 'kubernetes', namespace: 'plain', serviceAccount: { name: 'existing' } }),
    set('local', { kind: 'process' }),
  ],
};

describe('controllerNeeds', () => {
  it('lists each runner namespace with its features, and the controller namespace with leader election', () => {
    expect(controllerNeeds(fleet, { controllerNamespace: 'rf', leaderElection: true })).toEqual([
      {
        namespace: 'ci',
        runners: true,
        controller: false,
        features: ['createServiceAccount', 'kubernetesMode'],
      },
      { namespace: 'plain', runners: true, controller: false, features: [] },
      { namespace: 'rf', runners: false, controller: true, features: ['leaderElection'] },
    ]);
    expect(
      controllerNeeds(fleet, { controllerNamespace: 'rf', leaderElection: false }).map((n) => n.namespace),
    ).toEqual(['ci', 'plain']);
  });

  it('merges a namespace that is both the controller home and a runner namespace', () => {
    const needs = controllerNeeds(fleet, { controllerNamespace: 'ci', leaderElection: true });
    expect(needs[0]).toEqual({
      namespace: 'ci',
      runners: true,
      controller: true,
      features: ['createServiceAccount', 'kubernetesMode', 'leaderElection'],
    });
  });

  it('names each runner ServiceAccount', () => {
    expect(kubernetesRunners(fleet)).toEqual([
      {
        scaleSet: 'kube',
        namespace: 'ci',
        serviceAccount: 'kube-runner',
        created: true,
        containerMode: 'kubernetes',
        identity: { aws: { roleArn: 'arn:aws:iam::123456789012:role/r' } },
      },
      {
        scaleSet: 'plain',
        namespace: 'plain',
        serviceAccount: 'existing',
        created: false,
        containerMode: 'none',
        identity: undefined,
      },
    ]);
  });
});
