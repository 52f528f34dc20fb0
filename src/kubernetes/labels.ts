/**
 * Ownership labels and names shared by the provider, the RBAC manifests and the test aids. Every object that
 * runner-fleet creates in a cluster carries these labels, so it can be listed (and cleaned up) by selector.
 */

export const LABEL_FLEET = 'runner-fleet.dev/fleet';
export const LABEL_SCALE_SET = 'runner-fleet.dev/scale-set';
export const LABEL_RUNNER = 'runner-fleet.dev/runner';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'runner-fleet';

/** Key of the runner Secret that holds the encoded JIT config. */
export const SECRET_KEY_JITCONFIG = 'jitconfig';
/** Key of the runner Secret that holds the registration token (token mode). */
export const SECRET_KEY_TOKEN = 'token';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS_LABEL.test(value);
}

export function isLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE.test(value);
}

/** `runner-fleet.dev/fleet=<fleet>[,runner-fleet.dev/scale-set=<scaleSet>]` */
export function ownerSelector(fleet: string, scaleSet?: string): string {
  return scaleSet === undefined
    ? `${LABEL_FLEET}=${fleet}`
    : `${LABEL_FLEET}=${fleet},${LABEL_SCALE_SET}=${scaleSet}`;
}

/** Labels of a per-scale-set object (ServiceAccount, RoleBinding, ConfigMap). */
export function scaleSetLabels(fleet: string, scaleSet: string): Record<string, string> {
  return { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_FLEET]: fleet, [LABEL_SCALE_SET]: scaleSet };
}

/** Labels of a runner pod and its Secret. */
export function runnerLabels(fleet: string, scaleSet: string, runner: string): Record<string, string> {
  return { ...scaleSetLabels(fleet, scaleSet), [LABEL_RUNNER]: runner };
}

/** Default name of the ServiceAccount runner-fleet creates for a scale set. */
export function runnerServiceAccountName(scaleSet: string): string {
  return `${scaleSet}-runner`;
}

/** Name of the RoleBinding that gives a kubernetes-mode runner ServiceAccount the container-hooks Role. */
export function hooksRoleBindingName(scaleSet: string): string {
  return `${scaleSet}-runner-hooks`;
}

/** Name of the ConfigMap that holds a scale set's container-hook pod template. */
export function hookTemplateConfigMapName(scaleSet: string): string {
  return `${scaleSet}-hook-template`;
}
