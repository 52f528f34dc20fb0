/**
 * kwok plays the kubelet for the fake nodes: it applies these Stages (kwok.x-k8s.io/v1alpha1, read from its --config
 * file) to nodes and pods it manages. The behaviour they give:
 *
 * - node-ready: a new node gets Ready (and keeps whatever capacity it was created with).
 * - pod-running: a pod bound to a kwok node goes Pending -> Running, containers running, Ready.
 * - pod-exit: a Running pod annotated `runner-fleet.test/exit-code: "<n>"` terminates: every container exits with n,
 *   phase Succeeded for 0 and Failed otherwise. This is how a test (or the simulator's kwok bridge) says "the runner
 *   finished"; patching the pod's status subresource as a kubelet would works too.
 * - pod-delete: a pod being deleted (deletionTimestamp set) is removed, as the kubelet confirms a graceful delete.
 *   Finalizers held by others still block it, as on a real node.
 */
import { stringify } from 'yaml';

export const KWOK_NODE_LABEL = 'runner-fleet.test/kwok';
export const EXIT_CODE_ANNOTATION = 'runner-fleet.test/exit-code';

interface Stage {
  apiVersion: 'kwok.x-k8s.io/v1alpha1';
  kind: 'Stage';
  metadata: { name: string };
  spec: Record<string, unknown>;
}

function stage(name: string, kind: 'Node' | 'Pod', spec: Record<string, unknown>): Stage {
  return {
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'Stage',
    metadata: { name },
    spec: { resourceRef: { apiGroup: 'v1', kind }, ...spec },
  };
}

const notDeleted = { key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' };
const phaseIs = (phase: string): Record<string, unknown> => ({
  key: '.status.phase',
  operator: 'In',
  values: [phase],
});

// Templates are Go text/template with kwok's helpers (Now, Quote, PodIPWith, NodeIPWith) over the object as JSON.
const nodeReady = (kubeletVersion: string): string => `{{ $now := Now }}
conditions:
- {type: Ready, status: "True", reason: KubeletReady, message: kwok is posting ready status, lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $now | Quote }}}
- {type: MemoryPressure, status: "False", reason: KubeletHasSufficientMemory, message: ok, lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $now | Quote }}}
- {type: DiskPressure, status: "False", reason: KubeletHasNoDiskPressure, message: ok, lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $now | Quote }}}
- {type: PIDPressure, status: "False", reason: KubeletHasSufficientPID, message: ok, lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $now | Quote }}}
addresses:
- {type: InternalIP, address: {{ NodeIP | Quote }}}
- {type: Hostname, address: {{ .metadata.name | Quote }}}
{{ with .status.capacity }}{{ else }}capacity: {cpu: "64", memory: 256Gi, pods: "1000"}
allocatable: {cpu: "64", memory: 256Gi, pods: "1000"}
{{ end }}nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: ${kubeletVersion}
  kubeProxyVersion: ""
  containerRuntimeVersion: kwok
  kernelVersion: kwok
  osImage: kwok
  machineID: ""
  systemUUID: ""
  bootID: ""
phase: Running
`;

const podRunning = `{{ $now := Now }}
conditions:
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "True", lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, started: true, restartCount: 0, state: {running: {startedAt: {{ $now | Quote }}}}}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
{{ if eq (or .restartPolicy "") "Always" }}
- {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, started: true, restartCount: 0, state: {running: {startedAt: {{ $now | Quote }}}}}
{{ else }}
- {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, restartCount: 0, state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}}
{{ end }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName (or .spec.hostNetwork false) .metadata.uid .metadata.name .metadata.namespace | Quote }}
phase: Running
startTime: {{ $now | Quote }}
`;

const podExit = `{{ $now := Now }}
{{ $code := index .metadata.annotations "${EXIT_CODE_ANNOTATION}" }}
conditions:
- {type: ContainersReady, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: false, started: false, restartCount: 0, state: {terminated: {exitCode: {{ atoi $code }}, reason: {{ if eq $code "0" }}Completed{{ else }}Error{{ end }}, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}}
{{ end }}
phase: {{ if eq $code "0" }}Succeeded{{ else }}Failed{{ end }}
`;

/** `kubernetesVersion` is what the fake nodes report as their kubelet version. */
export function kwokStages(kubernetesVersion: string): Stage[] {
  return [
    stage('runner-fleet-node-ready', 'Node', {
      selector: {
        matchExpressions: [
          {
            key: '.status.conditions.[] | select( .type == "Ready" ) | .status',
            operator: 'NotIn',
            values: ['True'],
          },
        ],
      },
      next: { statusTemplate: nodeReady(kubernetesVersion) },
    }),
    stage('runner-fleet-pod-running', 'Pod', {
      selector: { matchExpressions: [notDeleted, phaseIs('Pending')] },
      next: { statusTemplate: podRunning },
    }),
    stage('runner-fleet-pod-exit', 'Pod', {
      selector: {
        matchExpressions: [
          notDeleted,
          phaseIs('Running'),
          { key: `.metadata.annotations["${EXIT_CODE_ANNOTATION}"]`, operator: 'Exists' },
        ],
      },
      next: { statusTemplate: podExit },
    }),
    stage('runner-fleet-pod-delete', 'Pod', {
      selector: { matchExpressions: [{ key: '.metadata.deletionTimestamp', operator: 'Exists' }] },
      next: { delete: true },
    }),
  ];
}

/** The kwok --config file: one YAML document per Stage. */
export function kwokConfigYaml(kubernetesVersion: string): string {
  return kwokStages(kubernetesVersion)
    .map((s) => stringify(s, { lineWidth: 0 }))
    .join('---\n');
}
