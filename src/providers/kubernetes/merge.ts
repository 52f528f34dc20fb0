/**
 * Merging a scale set's PodTemplateSpec over runner-fleet's defaults, with the rules people expect from
 * Kubernetes' strategic merge: containers, init containers and volumes merge by name, env by name, volume mounts
 * by mount path, maps (labels, annotations, nodeSelector, resources) key by key, tolerations and image pull secrets
 * append; any other field of the template replaces the default. Pure; never mutates its inputs.
 */
import type { V1Container, V1PodSpec, V1PodTemplateSpec } from '@kubernetes/client-node';

type Obj = Record<string, unknown>;

const isObj = (value: unknown): value is Obj =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function clone<T>(value: T): T {
  return structuredClone(value);
}

function mergeMap(base: unknown, overlay: unknown): Obj | undefined {
  if (!isObj(overlay)) return isObj(base) ? { ...base } : undefined;
  return { ...(isObj(base) ? base : {}), ...clone(overlay) };
}

function mergeByKey<T>(
  base: readonly T[] | undefined,
  overlay: readonly T[] | undefined,
  key: (item: T) => string,
  merge: (a: T, b: T) => T = (_a, b) => b,
): T[] | undefined {
  if (!overlay) return base ? clone([...base]) : undefined;
  const out = clone([...(base ?? [])]);
  for (const item of overlay) {
    const index = out.findIndex((existing) => key(existing) === key(item));
    if (index === -1) out.push(clone(item));
    else out[index] = merge(out[index] as T, clone(item));
  }
  return out;
}

function appendUnique<T>(base: readonly T[] | undefined, overlay: readonly T[] | undefined): T[] | undefined {
  if (!overlay) return base ? clone([...base]) : undefined;
  const out = clone([...(base ?? [])]);
  const seen = new Set(out.map((item) => JSON.stringify(item)));
  for (const item of overlay) if (!seen.has(JSON.stringify(item))) out.push(clone(item));
  return out;
}

export function mergeContainer(base: V1Container, overlay: Partial<V1Container>): V1Container {
  const out: Obj = { ...clone(base) };
  for (const [key, value] of Object.entries(overlay)) {
    if (value === undefined) continue;
    switch (key) {
      case 'env':
        out.env = mergeByKey(base.env, overlay.env, (e) => e.name);
        break;
      case 'volumeMounts':
        out.volumeMounts = mergeByKey(base.volumeMounts, overlay.volumeMounts, (m) => m.mountPath);
        break;
      case 'resources': {
        const b = (base.resources ?? {}) as Obj;
        const o = value as Obj;
        const merged: Obj = { ...clone(b), ...clone(o) };
        for (const part of ['requests', 'limits']) {
          const m = mergeMap(b[part], o[part]);
          if (m) merged[part] = m;
        }
        out.resources = merged;
        break;
      }
      default:
        out[key] = clone(value);
    }
  }
  return out as unknown as V1Container;
}

const byName = (item: { name: string }) => item.name;

export function mergePodSpec(base: V1PodSpec, overlay: Partial<V1PodSpec>): V1PodSpec {
  const out: Obj = { ...clone(base) };
  for (const [key, value] of Object.entries(overlay)) {
    if (value === undefined) continue;
    switch (key) {
      case 'containers':
        out.containers = mergeByKey(base.containers, overlay.containers, byName, mergeContainer);
        break;
      case 'initContainers':
        out.initContainers = mergeByKey(base.initContainers, overlay.initContainers, byName, mergeContainer);
        break;
      case 'volumes':
        out.volumes = mergeByKey(base.volumes, overlay.volumes, byName);
        break;
      case 'nodeSelector':
        out.nodeSelector = mergeMap(base.nodeSelector, value);
        break;
      case 'tolerations':
      case 'imagePullSecrets':
        out[key] = appendUnique(base[key] as unknown[] | undefined, value as unknown[]);
        break;
      default:
        out[key] = clone(value);
    }
  }
  return out as unknown as V1PodSpec;
}

/** The template as configured (validated loosely by schema.ts). */
export interface PodTemplateOverlay {
  readonly metadata?: {
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly spec?: Record<string, unknown>;
}

export function mergePodTemplate(
  base: V1PodTemplateSpec,
  overlay: PodTemplateOverlay | undefined,
): V1PodTemplateSpec {
  if (!overlay) return clone(base);
  const labels = mergeMap(base.metadata?.labels, overlay.metadata?.labels) as
    Record<string, string> | undefined;
  const annotations = mergeMap(base.metadata?.annotations, overlay.metadata?.annotations) as
    Record<string, string> | undefined;
  const metadata = {
    ...clone(base.metadata ?? {}),
    ...(labels ? { labels } : {}),
    ...(annotations ? { annotations } : {}),
  };
  const spec = overlay.spec
    ? mergePodSpec(base.spec ?? { containers: [] }, overlay.spec as Partial<V1PodSpec>)
    : clone(base.spec);
  return { metadata, ...(spec ? { spec } : {}) };
}
