/**
 * How the CLI finds its Kubernetes cluster and its own namespace. Shared by `start`, `doctor` and `demo`; only the
 * CLI builds a KubeConfig (the provider, the rights check and the leader elector are handed one), with
 * kubernetes/kubeconfig.ts. Only types come from @kubernetes/client-node here: `start` without leader election or a
 * Kubernetes scale set never loads it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { FleetConfig } from '../core/fleet-config.js';
import { leaseNameFor } from '../kubernetes/rbac-rules.js';

const IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/**
 * The controller's own namespace (where its leader-election Lease lives): an explicit value, else $POD_NAMESPACE
 * (the Helm chart sets it), else the kubeconfig context's namespace, else the pod's ServiceAccount namespace file,
 * else `default`.
 */
export function controllerNamespace(
  kubeConfig: KubeConfig,
  explicit: string | undefined,
  env: NodeJS.ProcessEnv,
): string {
  if (explicit) return explicit;
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
  if (context?.namespace) return context.namespace;
  try {
    const fromFile = readFileSync(IN_CLUSTER_NAMESPACE, 'utf8').trim();
    if (fromFile !== '') return fromFile;
  } catch {
    // not in a pod
  }
  return 'default';
}

export interface LeaderElectionSettings {
  readonly enabled: boolean;
  readonly namespace: string;
  readonly leaseName: string;
  /** Unique per process: the pod name (or host name) plus a random suffix, so a restarted container is a new candidate. */
  readonly identity: string;
}

/** `--leader-election`, or RUNNER_FLEET_LEADER_ELECTION=true (the Helm chart sets it). */
export function wantsLeaderElection(flags: { leaderElection?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return flags.leaderElection === true || (env.RUNNER_FLEET_LEADER_ELECTION ?? '').toLowerCase() === 'true';
}

/** Flags first, then the environment the Helm chart sets (RUNNER_FLEET_LEADER_ELECTION, ..._LEASE_NAME). */
export function leaderElectionSettings(
  kubeConfig: KubeConfig,
  config: Pick<FleetConfig, 'name'>,
  flags: { leaderElection?: boolean; leaseName?: string; leaseNamespace?: string },
  env: NodeJS.ProcessEnv,
): LeaderElectionSettings {
  return {
    enabled: wantsLeaderElection(flags, env),
    namespace: controllerNamespace(kubeConfig, flags.leaseNamespace ?? env.RUNNER_FLEET_LEASE_NAMESPACE, env),
    leaseName: flags.leaseName ?? env.RUNNER_FLEET_LEASE_NAME ?? leaseNameFor(config.name),
    identity: `${env.POD_NAME ?? hostname()}_${randomBytes(4).toString('hex')}`,
  };
}

/** Whether the fleet needs a Kubernetes connection at all. */
export function usesKubernetes(config: Pick<FleetConfig, 'scaleSets'>, leaderElection: boolean): boolean {
  return leaderElection || config.scaleSets.some((s) => s.provider.kind === 'kubernetes');
}
