/**
 * What `runner-fleet doctor` checks on Kubernetes: the controller's own rights (SelfSubjectAccessReview), and for
 * each kubernetes scale set its runner ServiceAccount: present, carrying the identity annotations, and holding
 * the rights its container mode needs (SubjectAccessReview).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import type { FleetConfig } from '../../core/fleet-config.js';
import { describeApiError, isForbidden, isNotFound, withSignal } from '../../kubernetes/api.js';
import type { Permission } from '../../kubernetes/rbac-manifests.js';
import { describePermission } from '../../kubernetes/rbac-manifests.js';
import { leaseNameFor } from '../../kubernetes/rbac-rules.js';
import type { RightsCheckResult } from '../../kubernetes/rights-check.js';
import { checkControllerRights, checkRunnerRights } from '../../kubernetes/rights-check.js';
import { identityProblems } from './identity.js';
import type { RunnerServiceAccount } from './rbac-needs.js';
import { controllerNeeds, kubernetesRunners } from './rbac-needs.js';

export type RunnerAccountStatus =
  /** Present, identity right, rights complete. */
  | { readonly state: 'ok' }
  /** runner-fleet creates it (and its RoleBinding) at start. */
  | { readonly state: 'created-at-start' }
  | { readonly state: 'missing' }
  | {
      readonly state: 'problems';
      readonly identity: readonly string[];
      readonly missingRights: readonly Permission[];
    }
  /** The rights could not be checked (the caller may not create SubjectAccessReviews). */
  | { readonly state: 'unchecked'; readonly reason: string; readonly identity: readonly string[] };

export interface KubernetesDoctorReport {
  readonly ok: boolean;
  readonly controller: RightsCheckResult;
  readonly runners: ReadonlyArray<RunnerServiceAccount & { readonly status: RunnerAccountStatus }>;
}

export interface InspectOptions {
  readonly controllerNamespace: string;
  readonly leaderElection: boolean;
  readonly leaseName?: string;
  readonly controllerRole?: string;
  /**
   * The controller's ServiceAccount, when the caller is someone else (an operator running doctor): its rights are
   * then checked with SubjectAccessReview. Without it, the caller's own rights are checked.
   */
  readonly controllerServiceAccount?: { readonly namespace: string; readonly name: string };
  readonly signal?: AbortSignal;
}

async function inspectRunner(
  kubeConfig: KubeConfig,
  core: CoreV1Api,
  runner: RunnerServiceAccount,
  signal: AbortSignal | undefined,
): Promise<RunnerAccountStatus> {
  let annotations: Record<string, string> | undefined;
  try {
    const sa = await core.readNamespacedServiceAccount(
      { name: runner.serviceAccount, namespace: runner.namespace },
      withSignal(signal),
    );
    annotations = sa.metadata?.annotations;
  } catch (error) {
    if (!isNotFound(error)) throw error;
    return runner.created ? { state: 'created-at-start' } : { state: 'missing' };
  }
  const identity = identityProblems(runner.identity, annotations);
  let missingRights: readonly Permission[];
  try {
    missingRights = (
      await checkRunnerRights(
        kubeConfig,
        {
          namespace: runner.namespace,
          serviceAccount: runner.serviceAccount,
          containerMode: runner.containerMode,
        },
        signal ? { signal } : {},
      )
    ).missing;
  } catch (error) {
    if (!isForbidden(error)) throw error;
    return { state: 'unchecked', reason: describeApiError(error), identity };
  }
  return identity.length === 0 && missingRights.length === 0
    ? { state: 'ok' }
    : { state: 'problems', identity, missingRights };
}

/**
 * The start-up self-check for a fleet: the controller's rights in every namespace its kubernetes scale sets (and
 * its leader-election Lease) use, with the caller's own credentials. `start` refuses to run when `ok` is false and
 * prints `message` (each missing rule, then the manifest that grants them).
 */
export function checkControllerRightsForFleet(
  kubeConfig: KubeConfig,
  config: Pick<FleetConfig, 'name' | 'scaleSets'>,
  options: Omit<InspectOptions, 'controllerServiceAccount'>,
): Promise<RightsCheckResult> {
  return checkControllerRights(kubeConfig, controllerNeeds(config, options), {
    names: {
      controllerRole: options.controllerRole ?? 'runner-fleet-controller',
      leaseName: options.leaseName ?? leaseNameFor(config.name),
    },
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

export async function inspectKubernetesFleet(
  kubeConfig: KubeConfig,
  config: Pick<FleetConfig, 'name' | 'scaleSets'>,
  options: InspectOptions,
): Promise<KubernetesDoctorReport> {
  const needs = controllerNeeds(config, options);
  const controller = await checkControllerRights(kubeConfig, needs, {
    names: {
      controllerRole: options.controllerRole ?? 'runner-fleet-controller',
      leaseName: options.leaseName ?? leaseNameFor(config.name),
    },
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.controllerServiceAccount ? { asServiceAccount: options.controllerServiceAccount } : {}),
  });
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const runners = [];
  for (const runner of kubernetesRunners(config)) {
    runners.push({ ...runner, status: await inspectRunner(kubeConfig, core, runner, options.signal) });
  }
  const ok =
    controller.ok && runners.every((r) => r.status.state === 'ok' || r.status.state === 'created-at-start');
  return { ok, controller, runners };
}

/** One line per finding, prefixed `ok`, `warn` or `FAIL`. */
export function formatKubernetesReport(report: KubernetesDoctorReport): string[] {
  const lines: string[] = [];
  if (report.controller.ok) {
    lines.push(`ok    controller rights: all ${report.controller.checked} permissions granted`);
  } else {
    for (const p of report.controller.missing) lines.push(`FAIL  controller lacks: ${describePermission(p)}`);
  }
  for (const r of report.runners) {
    const who = `scale set ${r.scaleSet}: ServiceAccount ${r.namespace}/${r.serviceAccount}`;
    const s = r.status;
    switch (s.state) {
      case 'ok':
        lines.push(`ok    ${who} (${r.containerMode} mode${r.identity ? ', identity annotated' : ''})`);
        break;
      case 'created-at-start':
        lines.push(`ok    ${who} does not exist yet; runner-fleet creates it at start`);
        break;
      case 'missing':
        lines.push(`FAIL  ${who} does not exist`);
        break;
      case 'unchecked':
        for (const p of s.identity) lines.push(`FAIL  ${who}: ${p}`);
        lines.push(`warn  ${who}: rights not checked (${s.reason})`);
        break;
      case 'problems':
        for (const p of s.identity) lines.push(`FAIL  ${who}: ${p}`);
        for (const p of s.missingRights) lines.push(`FAIL  ${who} lacks: ${describePermission(p)}`);
        break;
    }
  }
  return lines;
}
