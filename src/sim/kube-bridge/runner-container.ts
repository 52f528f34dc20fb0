/**
 * The bridge's own view of a runner pod, as a kubelet running actions/runner would see it: the runner container is the
 * one given actions/runner's inputs (ACTIONS_RUNNER_INPUT_JITCONFIG, or ACTIONS_RUNNER_INPUT_TOKEN with the URL), and
 * their values come from the pod spec or the Secrets it references. It reads the pod, not runner-fleet's code that
 * wrote it, so a change in how runner-fleet builds pods that would break a real runner breaks the bridge too.
 */
import type { V1Container, V1Pod, V1Secret } from '@kubernetes/client-node';
import type { InstanceRegistration } from '../runner/registration.js';

const JITCONFIG = 'ACTIONS_RUNNER_INPUT_JITCONFIG';
const TOKEN = 'ACTIONS_RUNNER_INPUT_TOKEN';

/** The container that runs actions/runner, or undefined when no container is given its inputs. */
export function runnerContainer(pod: V1Pod): V1Container | undefined {
  return pod.spec?.containers.find((c) => c.env?.some((e) => e.name === JITCONFIG || e.name === TOKEN));
}

/** The Secret the runner container's registration variables point at (secretKeyRef), if any. */
export function registrationSecretName(pod: V1Pod): string | undefined {
  const ref = runnerContainer(pod)?.env?.find((e) => e.name === JITCONFIG || e.name === TOKEN)?.valueFrom
    ?.secretKeyRef;
  return ref?.name;
}

/**
 * The registration the runner container would run with, resolving secretKeyRefs against `secret`; undefined while a
 * referenced value is missing (a kubelet would hold the container until the Secret exists).
 */
export function registrationFromPod(
  pod: V1Pod,
  secret: V1Secret | undefined,
): InstanceRegistration | undefined {
  const runner = runnerContainer(pod);
  if (!runner) return undefined;
  const resolve = (name: string): string | undefined => {
    const e = runner.env?.find((v) => v.name === name);
    if (!e) return undefined;
    if (e.value !== undefined) return e.value;
    const ref = e.valueFrom?.secretKeyRef;
    if (!ref || !secret || secret.metadata?.name !== ref.name) return undefined;
    const data = secret.data?.[ref.key];
    if (data !== undefined) return Buffer.from(data, 'base64').toString('utf8');
    return secret.stringData?.[ref.key];
  };
  const jitConfig = resolve(JITCONFIG);
  if (jitConfig !== undefined) return { mode: 'jit', jitConfig };
  const token = resolve(TOKEN);
  const url = resolve('ACTIONS_RUNNER_INPUT_URL');
  if (token === undefined || url === undefined) return undefined;
  const script = [...(runner.command ?? []), ...(runner.args ?? [])].join(' ');
  return {
    mode: 'token',
    url,
    token,
    labels: (resolve('ACTIONS_RUNNER_INPUT_LABELS') ?? '').split(',').filter((l) => l !== ''),
    runnerGroup: resolve('ACTIONS_RUNNER_INPUT_RUNNERGROUP') ?? 'Default',
    ephemeral: script.includes('--ephemeral'),
  };
}
