/**
 * From a fleet configuration to what the controller does in each namespace (for its Roles and the self-check) and
 * to the runner ServiceAccounts `doctor` inspects.
 */
import type { FleetConfig, IdentityConfig } from '../../core/fleet-config.js';
import type { NamespaceNeeds } from '../../kubernetes/rbac-manifests.js';
import type { ContainerMode, Feature } from '../../kubernetes/rbac-rules.js';
import { planScaleSet } from './manifests.js';
import { kubernetesProviderSchema } from './schema.js';

export interface RunnerServiceAccount {
  readonly scaleSet: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly created: boolean;
  readonly containerMode: ContainerMode;
  readonly identity: IdentityConfig | undefined;
}

type FleetShape = Pick<FleetConfig, 'name' | 'scaleSets'>;

/** The kubernetes scale sets of a fleet, with their provider blocks parsed (defaults applied). */
export function kubernetesRunners(config: FleetShape): RunnerServiceAccount[] {
  return config.scaleSets
    .filter((set) => set.provider.kind === 'kubernetes')
    .map((set) => {
      const plan = planScaleSet({
        fleet: config.name,
        scaleSet: set.name,
        identity: set.identity,
        config: kubernetesProviderSchema.parse(set.provider),
      });
      return {
        scaleSet: set.name,
        namespace: plan.namespace,
        serviceAccount: plan.serviceAccountName,
        created: plan.createServiceAccount,
        containerMode: plan.containerMode,
        identity: set.identity,
      };
    });
}

export interface ControllerNeedsOptions {
  /** Namespace the controller runs in (holds its leader-election Lease). */
  readonly controllerNamespace: string;
  readonly leaderElection: boolean;
}

/** Per namespace: runner pods there or not, the controller there or not, and the features in use. */
export function controllerNeeds(config: FleetShape, options: ControllerNeedsOptions): NamespaceNeeds[] {
  const byNamespace = new Map<string, { runners: boolean; controller: boolean; features: Set<Feature> }>();
  const entry = (namespace: string) => {
    let e = byNamespace.get(namespace);
    if (!e) byNamespace.set(namespace, (e = { runners: false, controller: false, features: new Set() }));
    return e;
  };
  for (const runner of kubernetesRunners(config)) {
    const e = entry(runner.namespace);
    e.runners = true;
    if (runner.created) e.features.add('createServiceAccount');
    if (runner.containerMode === 'kubernetes') e.features.add('kubernetesMode');
  }
  if (options.leaderElection) {
    const e = entry(options.controllerNamespace);
    e.controller = true;
    e.features.add('leaderElection');
  }
  return [...byNamespace.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([namespace, e]) => ({
      namespace,
      runners: e.runners,
      controller: e.controller,
      features: [...e.features].sort(),
    }));
}
