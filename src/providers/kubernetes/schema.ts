/**
 * The `kubernetes` provider block. Only the parts of the pod template that runner-fleet reads or merges are
 * validated; the rest of a PodSpec passes through untouched (the API server validates it at create time).
 */
import { z } from 'zod';
import { dnsLabel, nonEmpty, whenObject } from '../../lib/zod-formats.js';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const QUANTITY = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

/** Kubernetes label/annotation key: optional DNS-subdomain prefix and '/', then a name of at most 63 characters. */
function isQualifiedKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && QUALIFIED_NAME.test(name);
}

const qualifiedKey = z.string().refine(isQualifiedKey, {
  error: 'must be a Kubernetes label or annotation key: [prefix/]name, name at most 63 of [A-Za-z0-9-_.]',
});

export const labelMap = z
  .record(
    qualifiedKey,
    z
      .string({ error: 'expected a string value (quote numbers and booleans)' })
      .refine((value) => value === '' || (value.length <= 63 && QUALIFIED_NAME.test(value)), {
        error:
          'must be a Kubernetes label value: at most 63 of [A-Za-z0-9-_.], starting and ending alphanumeric',
      }),
  )
  .meta({ docType: 'map of label' });

export const annotationMap = z
  .record(qualifiedKey, z.string({ error: 'expected a string value (quote numbers and booleans)' }))
  .meta({ docType: 'map of annotation' });

const container = z.looseObject({
  name: dnsLabel().describe('Container name; `runner` is the runner container that runner-fleet fills in.'),
});

const toleration = z.strictObject({
  key: z.string().optional().describe('Taint key to tolerate (empty with `Exists`: every taint).'),
  operator: z.enum(['Exists', 'Equal']).optional().describe('Default `Equal`.'),
  value: z.string().optional().describe('Taint value, with `Equal`.'),
  effect: z
    .enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'])
    .optional()
    .describe('Taint effect to tolerate (empty: every effect).'),
  tolerationSeconds: z
    .number()
    .int()
    .min(0, { error: 'must be 0 or more' })
    .max(31_536_000, { error: 'must be at most 31536000 (one year)' })
    .optional()
    .describe('With `NoExecute`: how long the pod stays bound.'),
});

const podTemplate = z
  .strictObject({
    metadata: z
      .strictObject({
        labels: labelMap.optional().describe('Labels added to each runner pod.'),
        annotations: annotationMap.optional().describe('Annotations added to each runner pod.'),
      })
      .optional()
      .describe('Pod metadata: only `labels` and `annotations`.'),
    spec: z
      .looseObject({
        containers: z
          .array(container)
          .superRefine(
            (containers, ctx) => {
              const seen = new Set<string>();
              containers.forEach((container: { name?: unknown }, index) => {
                if (typeof container?.name !== 'string') return;
                if (seen.has(container.name)) {
                  ctx.addIssue({
                    code: 'custom',
                    path: [index, 'name'],
                    message: `duplicate container name '${container.name}'`,
                  });
                }
                seen.add(container.name);
              });
            },
            // Run even when another container failed, so one pass reports both.
            { when: (payload) => Array.isArray(payload.value) },
          )
          .optional()
          .describe('Containers merged by name over runner-fleet defaults (`runner` is the runner itself).'),
        nodeSelector: z
          .record(z.string(), z.string({ error: 'expected a string value (quote numbers and booleans)' }))
          .optional()
          .describe('Node selector of the runner pods.'),
        tolerations: z
          .array(toleration)
          .max(100, { error: 'at most 100 tolerations' })
          .optional()
          .describe('Tolerations of the runner pods.'),
      })
      .optional()
      .describe(
        'PodSpec fields merged over the defaults. Fields other than containers, nodeSelector and tolerations ' +
          '(resources, priorityClassName, affinity, volumes, ...) pass through to the API server unchecked.',
      ),
  })
  .describe('A PodTemplateSpec merged over runner-fleet defaults (image, run.sh, restartPolicy: Never).');

const serviceAccount = z
  .strictObject({
    create: z
      .literal(true, { error: 'only `create: true` is accepted; to use an existing account give `name`' })
      .optional()
      .describe('Create one ServiceAccount per scale set (carrying the identity annotations).'),
    name: z
      .string()
      .max(253, { error: 'must be at most 253 characters' })
      .regex(DNS_SUBDOMAIN, { error: 'must be a DNS subdomain: lowercase letters, digits, - and .' })
      .optional()
      .describe('Use this existing ServiceAccount instead.'),
  })
  .superRefine((value, ctx) => {
    const given = (['create', 'name'] as const).filter((key) => value[key] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of `create: true` or `name: <existing>`' });
    }
  }, whenObject)
  .transform((value): { readonly create: true } | { readonly name: string } =>
    value.name !== undefined ? { name: value.name } : { create: true },
  );

export const kubernetesProviderSchema = z
  .strictObject({
    kind: z.literal('kubernetes').describe('Selects the kubernetes provider.'),
    namespace: dnsLabel().describe('Namespace of the runner pods, their Secrets and ServiceAccount.'),
    containerMode: z
      .enum(['none', 'dind', 'kubernetes'])
      .default('none')
      .describe(
        '`none`: steps run in the runner container; `dind`: a docker:dind sidecar; `kubernetes`: job containers ' +
          'run as separate pods through actions/runner-container-hooks.',
      ),
    serviceAccount: serviceAccount
      .prefault({ create: true })
      .describe('`{ create: true }` (one ServiceAccount per scale set) or `{ name: existing }`.'),
    template: podTemplate.optional(),
    image: nonEmpty()
      .optional()
      .describe('Runner image. Default: ghcr.io/actions/actions-runner at a pinned version.'),
    workVolume: z
      .strictObject({
        storageClassName: nonEmpty().optional().describe('StorageClass of the ephemeral work volume claim.'),
        size: z
          .string()
          .regex(QUANTITY, { error: 'must be a Kubernetes quantity such as 10Gi or 500Mi' })
          .default('10Gi')
          .describe('Requested size.'),
      })
      .optional()
      .describe('Work directory as an ephemeral PVC (needed by `kubernetes` container mode).'),
    serviceAccountAnnotations: annotationMap
      .optional()
      .describe(
        'Extra annotations of the created ServiceAccount (identity annotations come from `identity`).',
      ),
    podLabels: labelMap.optional().describe('Extra labels of runner pods (and job pods in kubernetes mode).'),
    podAnnotations: annotationMap
      .optional()
      .describe('Extra annotations of runner pods (and job pods in kubernetes mode).'),
  })
  .describe(
    'Runs each runner as a pod. The JIT config goes into a per-runner Secret owned by the pod, referenced through ' +
      'a secretKeyRef; cloud identity comes from the scale set `identity` block.',
  );

export type KubernetesProviderConfig = z.output<typeof kubernetesProviderSchema>;
