import { describe, expect, it } from 'vitest';
import { controllerNeeds, kubernetesRunners } from './rbac-needs.js';
import { scaleSetConfig } from './scale-set.test-helpers.js';

const fleet = {
  name: 'f',
  scaleSets: [
    scaleSetConfig(
      'kube',
      { namespace: 'ci', containerMode: 'kubernetes' },
      {
        identity: { aws: { roleArn: 'arn:aws:iam::123456789012:role/r' } },
      },
    ),
    scaleSetConfig('plain', { namespace: 'plain', serviceAccount: { name: 'existing' } }),
    scaleSetConfig('local', { kind: 'process' }),
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
