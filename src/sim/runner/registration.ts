/**
 * From the registration a compute instance is given to the emulator's input. The simulated cloud (src/sim/github
 * instances) and the kube bridge (src/sim/kube-bridge) both host emulated runners from such a registration, and must
 * configure them alike.
 */
import type { EmulatorRegistration } from './emulator.js';

/** How an instance becomes a runner: the shape of a provider's `Registration` (src/providers/provider.ts). */
export type InstanceRegistration =
  | { readonly mode: 'jit'; readonly jitConfig: string }
  | {
      readonly mode: 'token';
      readonly url: string;
      readonly token: string;
      readonly labels: readonly string[];
      readonly runnerGroup: string;
      readonly ephemeral: boolean;
    };

/** Token mode configures the runner under the instance's name (instance name = runner name). */
export function emulatorRegistration(registration: InstanceRegistration, name: string): EmulatorRegistration {
  if (registration.mode === 'jit') return { jitConfig: registration.jitConfig };
  return {
    url: registration.url,
    token: registration.token,
    name,
    labels: registration.labels,
    runnerGroup: registration.runnerGroup,
    ephemeral: registration.ephemeral,
    noDefaultLabels: true,
  };
}
