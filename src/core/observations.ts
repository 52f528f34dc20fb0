/**
 * The reconciler's view of the outside world between resyncs: per scale set, the last GitHub runner list and the
 * last provider instance list (kept current by watch events and by the executor's own calls). Lives in memory only:
 * after a restart the planner waits for fresh lists before concluding that anything is missing.
 */
import type { GitHubRunner } from './types.js';
import type { Instance } from './provider-port.js';
import type {
  GitHubObservation,
  InstanceObservation,
  ObservedGitHubRunner,
  ObservedInstance,
} from './plan-types.js';

/** How long our own deletions are remembered, to ignore lists and watch events that predate or echo them. */
const FORGET_DELETIONS_MS = 10 * 60_000;

const EMPTY_GITHUB: GitHubObservation = { at: null, runners: new Map() };
const EMPTY_INSTANCES: InstanceObservation = { at: null, items: new Map() };

export class Observations {
  readonly #github = new Map<string, { at: number | null; runners: Map<string, ObservedGitHubRunner> }>();
  readonly #instances = new Map<string, { at: number | null; items: Map<string, ObservedInstance> }>();
  /** name -> when we deleted that instance / registration */
  readonly #deletedInstances = new Map<string, number>();
  readonly #deletedRegistrations = new Map<string, number>();

  github(scaleSet: string): GitHubObservation {
    return this.#github.get(scaleSet) ?? EMPTY_GITHUB;
  }

  instances(scaleSet: string): InstanceObservation {
    return this.#instances.get(scaleSet) ?? EMPTY_INSTANCES;
  }

  /** A complete runner list for the scale set, whose call started at `at`. */
  setGitHub(scaleSet: string, at: number, runners: readonly GitHubRunner[]): void {
    const previous = this.github(scaleSet).runners;
    const next = new Map<string, ObservedGitHubRunner>();
    for (const r of runners) {
      const deletedAt = this.#deletedRegistrations.get(r.name);
      if (deletedAt !== undefined && deletedAt >= at) continue; // we removed it after this list began
      next.set(r.name, { ...r, firstSeenAt: previous.get(r.name)?.firstSeenAt ?? at });
    }
    this.#github.set(scaleSet, { at, runners: next });
  }

  /** A complete instance list for the scale set, whose call started at `at`. */
  setInstances(scaleSet: string, at: number, instances: readonly Instance[]): void {
    const previous = this.instances(scaleSet).items;
    const next = new Map<string, ObservedInstance>();
    for (const i of instances) {
      const deletedAt = this.#deletedInstances.get(i.name);
      if (deletedAt !== undefined && deletedAt >= at) continue;
      next.set(i.name, { ...i, observedAt: at });
    }
    // Watch events and our own creates seen after the list began are newer than the list.
    for (const [name, p] of previous) if (p.observedAt > at) next.set(name, p);
    this.#instances.set(scaleSet, { at, items: next });
  }

  /** A watch event or a create answer. */
  upsertInstance(scaleSet: string, instance: Instance, observedAt: number): void {
    const deletedAt = this.#deletedInstances.get(instance.name);
    if (deletedAt !== undefined && observedAt - deletedAt < FORGET_DELETIONS_MS) return; // an echo of our delete
    let o = this.#instances.get(scaleSet);
    if (o === undefined) this.#instances.set(scaleSet, (o = { at: null, items: new Map() }));
    o.items.set(instance.name, { ...instance, observedAt });
  }

  instanceDeleted(scaleSet: string, name: string, at: number): void {
    this.#deletedInstances.set(name, at);
    this.#instances.get(scaleSet)?.items.delete(name);
  }

  registrationDeleted(scaleSet: string, name: string, at: number): void {
    this.#deletedRegistrations.set(name, at);
    this.#github.get(scaleSet)?.runners.delete(name);
  }

  /** Drops remembered deletions older than the window. */
  forget(now: number): void {
    for (const m of [this.#deletedInstances, this.#deletedRegistrations]) {
      for (const [name, at] of m) if (now - at > FORGET_DELETIONS_MS) m.delete(name);
    }
  }
}
