/**
 * What every rule of one scale set's planning pass shares: the snapshot, the scale set's configuration, the time, the
 * actions planned so far and the earliest time the pass asks to be woken. Freshness: an observation (runner list,
 * instance list) only counts against a record when it was taken after the record's last state change; an older list
 * may predate what the record says, so the planner waits for the next one.
 */
import type { FleetConfig, ScaleSetConfig } from '../fleet-config.js';
import type { RunnerState } from '../types.js';
import type { Action, ObservedInstance, RunnerSnapshot, ScaleSetSnapshot } from '../plan-types.js';
import type { RandomSource } from '../names.js';
import { NameIndex } from '../name-index.js';

export interface PlanOptions {
  /** Source of new runner names. Pass a seeded generator for reproducible plans. */
  readonly random: RandomSource;
  /**
   * True when a runner of that name is on record although not in the snapshot (deleted runners leave the store's
   * memory soon after their deletion and stay in its file). A new name must be new there too.
   */
  readonly nameTaken?: (name: string) => boolean;
  /** Most job status checks per scale set per pass (bounds API use after an outage). Default 20. */
  readonly maxJobChecks?: number;
  /**
   * Most new runners per scale set per pass (default 1,000); the rest follow in the next pass, planned at once. A
   * burst of thousands of jobs then costs several short passes instead of one long one (the executor creates a
   * bounded number at a time and GitHub accepts about 180 runner-creating calls a minute, so nothing is lost by
   * planning later).
   */
  readonly maxCreatesPerPass?: number;
}

export type ControllerTimings = FleetConfig['controller'];

/** A state change the planner decides for one record in this pass. */
export interface Transition {
  readonly state: RunnerState;
  readonly reason: string;
  readonly failure?: boolean;
  readonly instanceGone?: boolean;
  readonly registrationGone?: boolean;
  readonly githubId?: number;
}

export class PlanContext {
  readonly actions: Action[] = [];
  readonly records = new NameIndex<RunnerSnapshot>();
  #wake = Infinity;

  constructor(
    readonly s: ScaleSetSnapshot,
    readonly set: ScaleSetConfig,
    readonly timings: ControllerTimings,
    readonly now: number,
    readonly options: PlanOptions,
  ) {
    for (const r of s.runners) this.records.set(r.name, r);
  }

  /** The wake-up time asked for, or Infinity. */
  get wake(): number {
    return this.#wake;
  }

  /** Plan a pass at `at` (the earliest asked for wins). */
  wakeAt(at: number): void {
    if (at > this.now && at < this.#wake) this.#wake = at;
  }

  /** Records a planned state change of one record. */
  mark(r: RunnerSnapshot, t: Transition): void {
    this.actions.push({
      type: 'mark-runner',
      scaleSet: this.set.name,
      name: r.name,
      state: t.state,
      reason: t.reason,
      failure: t.failure ?? false,
      ...(t.instanceGone ? { instanceGone: true } : {}),
      ...(t.registrationGone ? { registrationGone: true } : {}),
      ...(t.githubId !== undefined && t.githubId !== r.githubId ? { githubId: t.githubId } : {}),
    });
  }

  /** A runner list taken after the record's last change. */
  ghFresh(r: RunnerSnapshot): boolean {
    const at = this.s.github.at;
    return at !== null && at > r.stateChangedAt;
  }

  /** An instance list taken after the record's last change. */
  instFresh(r: RunnerSnapshot): boolean {
    const at = this.s.instances.at;
    return at !== null && at > r.stateChangedAt;
  }

  /** The instance observation for a record, ignoring one older than our own delete of it. */
  instanceOf(r: RunnerSnapshot): ObservedInstance | undefined {
    const instance = this.s.instances.items.get(r.name);
    if (
      instance !== undefined &&
      r.instanceDeletedAt !== null &&
      instance.observedAt <= r.instanceDeletedAt
    ) {
      return undefined;
    }

    return instance;
  }

  deleteInstance(name: string, reason: string): void {
    this.actions.push({ type: 'delete-instance', scaleSet: this.set.name, name, reason });
  }

  staleAgainst(name: string, observedAt: number | null): boolean {
    const r = this.records.get(name);
    return (
      r !== undefined && r.state === 'deleted' && (observedAt === null || observedAt <= r.stateChangedAt)
    );
  }
}
