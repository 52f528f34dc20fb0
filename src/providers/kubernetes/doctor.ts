/**
 * What `runner-fleet doctor` checks on Kubernetes: the controller's own rights (SelfSubjectAccessReview), and for
 * each kubernetes scale set its runner ServiceAccount: present, carrying the identity annotations, holding the
 * rights its container mode needs (SubjectAccessReview), and, for an AWS identity, that pods of that
 * ServiceAccount really get it: a server-side dry run of a probe pod shows what the admission chain (the pod
 * identity webhook) does to a pod, without creating one.
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
import {
  IRSA_ENV,
  IRSA_ROLE_ANNOTATION,
  POD_IDENTITY_ENV,
  identityProblems,
  podIdentityAssociationCommand,
} from './identity.js';
import type { RunnerServiceAccount } from './rbac-needs.js';
import { controllerNeeds, kubernetesRunners } from './rbac-needs.js';

export type RunnerAccountStatus =
  /** Present, identity right, rights complete; `notes` say what pods of it get. */
  | { readonly state: 'ok'; readonly notes?: readonly string[] }
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

/** What a probe pod of the ServiceAccount got from the admission chain: findings, and notes when it is right. */
interface MutationCheck {
  readonly problems: readonly string[];
  readonly notes: readonly string[];
  /** The probe could not be made (forbidden, refused by another admission rule). */
  readonly unchecked?: string;
}

const PROBE_IMAGE = 'registry.k8s.io/pause:3.10';

/**
 * A server-side dry run (nothing is created) of a minimal pod running as the ServiceAccount: the pod identity
 * webhook mutates dry-run requests too (sideEffects: None), so the answer shows whether pods get the identity.
 */
async function checkAwsMutation(
  core: CoreV1Api,
  runner: RunnerServiceAccount,
  signal: AbortSignal | undefined,
): Promise<MutationCheck> {
  const aws = runner.identity?.aws;
  if (!aws) return { problems: [], notes: [] };
  let pod;
  try {
    pod = await core.createNamespacedPod(
      {
        namespace: runner.namespace,
        dryRun: 'All',
        body: {
          metadata: {
            generateName: 'runner-fleet-doctor-probe-',
            labels: { 'app.kubernetes.io/managed-by': 'runner-fleet', 'runner-fleet.dev/probe': 'identity' },
          },
          spec: {
            serviceAccountName: runner.serviceAccount,
            automountServiceAccountToken: false,
            restartPolicy: 'Never',
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [
              {
                name: 'probe',
                image: PROBE_IMAGE,
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              },
            ],
          },
        },
      },
      withSignal(signal),
    );
  } catch (error) {
    return {
      problems: [],
      notes: [],
      unchecked: `a dry-run probe pod was refused: ${describeApiError(error)}`,
    };
  }
  const env = new Map((pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
  const mounted = (name: string | undefined) =>
    name !== undefined &&
    (pod.spec?.containers[0]?.volumeMounts ?? []).some((m) => name.startsWith(m.mountPath));
  if (!aws.podIdentity) {
    const role = env.get(IRSA_ENV.roleArn);
    if (role === undefined) {
      return {
        problems: [
          `annotation ${IRSA_ROLE_ANNOTATION} is present but pods are not mutated (a dry-run pod got no ` +
            `${IRSA_ENV.roleArn}): is the pod identity webhook installed?`,
        ],
        notes: [],
      };
    }
    if (role !== aws.roleArn)
      return { problems: [`pods get role ${role}, expected ${aws.roleArn}`], notes: [] };
    if (!mounted(env.get(IRSA_ENV.tokenFile))) {
      return { problems: [`pods get ${IRSA_ENV.roleArn} but no web identity token is mounted`], notes: [] };
    }
    return {
      problems: [],
      notes: [
        `pods get role ${role} (${IRSA_ENV.roleArn}, ${IRSA_ENV.tokenFile} ${env.get(IRSA_ENV.tokenFile)})`,
      ],
    };
  }
  const problems: string[] = [];
  if (env.get(IRSA_ENV.roleArn) !== undefined) {
    problems.push(
      `pods also get IRSA's ${IRSA_ENV.roleArn} (${env.get(IRSA_ENV.roleArn)}), which the AWS SDKs use before ` +
        'EKS Pod Identity',
    );
  }
  if (env.get(POD_IDENTITY_ENV.fullUri) === undefined) {
    problems.push(
      `pods get no EKS Pod Identity credentials (a dry-run pod got no ${POD_IDENTITY_ENV.fullUri}): associate ` +
        `the role with the ServiceAccount: ${podIdentityAssociationCommand(runner.namespace, runner.serviceAccount, aws.roleArn)}` +
        ' (and install the EKS Pod Identity Agent add-on)',
    );
  }
  if (problems.length > 0) return { problems, notes: [] };
  return {
    problems: [],
    notes: [
      `pods get EKS Pod Identity credentials (${POD_IDENTITY_ENV.fullUri}, ${POD_IDENTITY_ENV.tokenFile}); ` +
        `the association must name role ${aws.roleArn}`,
    ],
  };
}

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
  const mutation =
    identity.length === 0 ? await checkAwsMutation(core, runner, signal) : { problems: [], notes: [] };
  if (mutation.unchecked !== undefined) {
    return { state: 'unchecked', reason: mutation.unchecked, identity: [...identity, ...mutation.problems] };
  }
  const problems = [...identity, ...mutation.problems];
  return problems.length === 0 && missingRights.length === 0
    ? { state: 'ok', ...(mutation.notes.length > 0 ? { notes: mutation.notes } : {}) }
    : { state: 'problems', identity: problems, missingRights };
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
        lines.push(
          `ok    ${who} (${r.containerMode} mode${r.identity ? (r.identity.aws?.podIdentity ? ', EKS Pod Identity' : ', identity annotated') : ''})`,
        );
        for (const note of s.notes ?? []) lines.push(`ok    ${who}: ${note}`);
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
