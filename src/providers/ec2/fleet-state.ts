/**
 * What one factory knows about one fleet's instances in one region, shared by the providers of all its scale sets:
 *
 * - the list: ONE paginated DescribeInstances (filter `tag:runner-fleet:fleet`) per resync for the whole fleet. The
 *   reconciler lists every scale set at once; concurrent calls join the call in flight, and a result started at most
 *   `reuseMs` ago is served again. Each provider then keeps its own scale set.
 * - the name index (runner name -> instance), fed by list results and by create(), which makes create idempotent by
 *   name without a call of its own (after a restart the reconciler lists before it retries a create).
 * - the instances runner-fleet deleted, hidden from lists from then on (AWS shows a terminated instance for about an
 *   hour; a stray terminated instance would only be deleted again).
 * - the garbage collection of runner parameters whose instance is gone, at most every `gcIntervalMs`, after a list.
 *
 * The view a list returns is the index at that moment, so an instance created (or deleted) after the DescribeInstances
 * began is already in (or out of) it: a joined or reused list is never older than the caller's own creates and deletes.
 */
import type { EC2Client, Instance as Ec2Instance } from '@aws-sdk/client-ec2';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { DeleteParametersCommand, GetParametersByPathCommand } from '@aws-sdk/client-ssm';
import type { Logger } from 'pino';
import { TAG_FLEET, TAG_RUNNER } from '../../aws/tags.js';
import { ProviderError } from '../provider.js';
import type { AwsCallStats } from './clients.js';
import { awsError } from './errors.js';
import type { Ec2InstanceRecord } from './instance-state.js';
import { isLive, recordFromEc2 } from './instance-state.js';

export interface Ec2ProviderStats extends AwsCallStats {
  /** list() calls served. */
  lists: number;
  /** Paginated DescribeInstances runs (one per resync, whatever the number of scale sets). */
  listFetches: number;
  /** DescribeInstances pages read. */
  describePages: number;
  /** Creates that fell back from spot to on-demand. */
  spotFallbacks: number;
  /** Runner parameter garbage collections, and the parameters they deleted. */
  parameterGcRuns: number;
  parametersCollected: number;
}

export function emptyStats(): Ec2ProviderStats {
  return {
    calls: {},
    requests: {},
    errors: {},
    lists: 0,
    listFetches: 0,
    describePages: 0,
    spotFallbacks: 0,
    parameterGcRuns: 0,
    parametersCollected: 0,
  };
}

export interface FleetStateTimings {
  /** DescribeInstances MaxResults (5 to 1000). */
  readonly pageSize: number;
  /** A list result started at most this long ago is served again. */
  readonly reuseMs: number;
  /** A terminated instance leaves lists this long after it ended (AWS shows it for about an hour). */
  readonly terminatedRetentionMs: number;
  /** Parameter GC runs at most this often. */
  readonly gcIntervalMs: number;
  /** A parameter younger than this (before the list began) is never collected: its instance may not be listed yet. */
  readonly gcMinAgeMs: number;
  /** A whole paginated list must finish within this. */
  readonly listTimeoutMs: number;
  /** A launched instance missing from lists for longer than this is forgotten (lists lag launches a little). */
  readonly listLagMs: number;
}

export const DEFAULT_TIMINGS: FleetStateTimings = {
  pageSize: 1000,
  reuseMs: 500,
  terminatedRetentionMs: 15 * 60_000,
  gcIntervalMs: 5 * 60_000,
  gcMinAgeMs: 5 * 60_000,
  listTimeoutMs: 60_000,
  listLagMs: 2 * 60_000,
};

export interface KnownInstance {
  record: Ec2InstanceRecord;
  /** This process wrote (or rewrote) the runner parameter of this instance. */
  parameterWritten: boolean;
  /** Launched by this process (not only seen in a list). */
  readonly launchedHere: boolean;
  /** ms: when this process launched it or last saw it in a list. */
  seenAt: number;
}

interface Snapshot {
  readonly startedAt: number;
  readonly records: readonly Ec2InstanceRecord[];
}

export interface FleetStateDeps {
  readonly fleet: string;
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly stats: Ec2ProviderStats;
  readonly logger: Logger;
  readonly now: () => number;
  readonly timings: FleetStateTimings;
  /** Told the OwnerId of every reservation listed: the account the instances live in. */
  readonly onOwner?: (account: string | undefined) => void;
}

export interface GcResult {
  readonly examined: number;
  readonly deleted: number;
}

function aborted(what: string): ProviderError {
  return new ProviderError(`${what} aborted`, { code: 'aborted', retryable: true });
}

/** Waits for a shared promise, but gives up (not the promise itself) when this caller's signal aborts. */
function joinShared<T>(shared: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) return Promise.reject(aborted(what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted(what));
    signal.addEventListener('abort', onAbort, { once: true });
    shared.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Which of two instances with the same runner name stands for it: the live one, else the newer. */
function better(candidate: Ec2InstanceRecord, current: Ec2InstanceRecord): boolean {
  if (isLive(candidate) !== isLive(current)) return isLive(candidate);
  return candidate.createdAt > current.createdAt;
}

export class FleetState {
  readonly fleet: string;
  readonly #d: FleetStateDeps;
  readonly #log: Logger;
  /** runner name -> its instance. */
  readonly #byName = new Map<string, KnownInstance>();
  /** instance id -> ms when runner-fleet deleted it. */
  readonly #deleted = new Map<string, number>();
  /** instance id -> ms when a list first showed it terminated (when AWS gives no time). */
  readonly #endSeen = new Map<string, number>();
  /** In-flight create() per runner name: concurrent creates of one name launch once. */
  readonly creating = new Map<string, Promise<unknown>>();
  /** runner name -> client-token generation, bumped when runner-fleet terminated the instance of a failed create. */
  readonly #generations = new Map<string, number>();
  /** SSM path prefixes of the providers using this state, with use counts: what parameter GC looks under. */
  readonly #prefixes = new Map<string, number>();
  #last: Snapshot | undefined;
  #inflight: Promise<Snapshot> | undefined;
  #lastGcAt = Number.NEGATIVE_INFINITY;
  #gc: Promise<GcResult> | undefined;

  constructor(deps: FleetStateDeps) {
    this.fleet = deps.fleet;
    this.#d = deps;
    this.#log = deps.logger.child({ fleet: deps.fleet });
  }

  addPrefix(prefix: string): void {
    this.#prefixes.set(prefix, (this.#prefixes.get(prefix) ?? 0) + 1);
  }

  removePrefix(prefix: string): void {
    const count = (this.#prefixes.get(prefix) ?? 0) - 1;
    if (count > 0) this.#prefixes.set(prefix, count);
    else this.#prefixes.delete(prefix);
  }

  generation(name: string): number {
    return this.#generations.get(name) ?? 0;
  }

  bumpGeneration(name: string): void {
    this.#generations.set(name, this.generation(name) + 1);
  }

  /** The instance known for a runner name, unless runner-fleet deleted it. */
  known(name: string): KnownInstance | undefined {
    const known = this.#byName.get(name);
    return known === undefined || this.#deleted.has(known.record.id) ? undefined : known;
  }

  /** Records an instance this process just launched (before its parameter is written). */
  launched(record: Ec2InstanceRecord): KnownInstance {
    const known: KnownInstance = {
      record,
      parameterWritten: false,
      launchedHere: true,
      seenAt: this.#d.now(),
    };
    this.#byName.set(record.name, known);
    return known;
  }

  /** From now on the instance is out of every list, and its name free for a new create. */
  markDeleted(name: string, instanceId: string): void {
    this.#deleted.set(instanceId, this.#d.now());
    if (this.#byName.get(name)?.record.id === instanceId) this.#byName.delete(name);
  }

  /** The fleet's instances: one DescribeInstances run shared by concurrent callers, then the index's view. */
  async records(signal: AbortSignal): Promise<Ec2InstanceRecord[]> {
    this.#d.stats.lists++;
    const last = this.#last;
    if (last === undefined || this.#d.now() - last.startedAt > this.#d.timings.reuseMs) {
      this.#inflight ??= this.#fetch().finally(() => {
        this.#inflight = undefined;
      });
      await joinShared(this.#inflight, signal, `DescribeInstances (fleet ${this.fleet})`);
    }
    return this.#view();
  }

  /** Looks one runner name up with its own DescribeInstances (delete() of a name the index does not know). */
  async lookup(name: string, signal: AbortSignal): Promise<Ec2InstanceRecord[]> {
    const found: Ec2InstanceRecord[] = [];
    try {
      let token: string | undefined;
      do {
        const page = await this.#d.ec2.send(
          new DescribeInstancesCommand({
            Filters: [
              { Name: `tag:${TAG_FLEET}`, Values: [this.fleet] },
              { Name: `tag:${TAG_RUNNER}`, Values: [name] },
            ],
            ...(token !== undefined ? { NextToken: token } : {}),
          }),
          { abortSignal: signal },
        );
        for (const reservation of page.Reservations ?? []) this.#d.onOwner?.(reservation.OwnerId);
        for (const instance of instancesOf(page.Reservations)) {
          const record = recordFromEc2(instance, this.#d.now());
          if (record !== undefined && record.name === name) found.push(record);
        }
        token = page.NextToken;
      } while (token);
    } catch (error) {
      throw awsError('DescribeInstances', error, { subject: `runner ${name}`, signal });
    }
    return found;
  }

  async #fetch(): Promise<Snapshot> {
    const { ec2, stats, timings, now } = this.#d;
    const startedAt = now();
    const signal = AbortSignal.timeout(timings.listTimeoutMs);
    stats.listFetches++;
    const records: Ec2InstanceRecord[] = [];
    try {
      let token: string | undefined;
      do {
        const page = await ec2.send(
          new DescribeInstancesCommand({
            Filters: [{ Name: `tag:${TAG_FLEET}`, Values: [this.fleet] }],
            MaxResults: timings.pageSize,
            ...(token !== undefined ? { NextToken: token } : {}),
          }),
          { abortSignal: signal },
        );
        stats.describePages++;
        for (const reservation of page.Reservations ?? []) this.#d.onOwner?.(reservation.OwnerId);
        for (const instance of instancesOf(page.Reservations)) {
          const record = recordFromEc2(instance, startedAt);
          if (record !== undefined && record.fleet === this.fleet) records.push(record);
        }
        token = page.NextToken;
      } while (token);
    } catch (error) {
      throw awsError('DescribeInstances', error, { subject: `fleet ${this.fleet}`, signal });
    }
    const snapshot: Snapshot = { startedAt, records };
    this.#absorb(snapshot);
    this.#last = snapshot;
    this.#maybeCollect(snapshot);
    return snapshot;
  }

  /** Folds a list into the index: one instance per name, launches the list may not show yet kept for a while. */
  #absorb(snapshot: Snapshot): void {
    const now = this.#d.now();
    const { listLagMs } = this.#d.timings;
    const best = new Map<string, Ec2InstanceRecord>();
    const listed = new Set<string>();
    for (const record of snapshot.records) {
      listed.add(record.id);
      const current = best.get(record.name);
      const knownId = this.#byName.get(record.name)?.record.id;
      if (current === undefined) best.set(record.name, record);
      else if (current.id === knownId) continue;
      else if (record.id === knownId || better(record, current)) best.set(record.name, record);
    }
    for (const [name, record] of best) {
      const known = this.#byName.get(name);
      if (known !== undefined && known.record.id === record.id) {
        // Keep the creation time first reported for the name (create() answers before LaunchTime is listed).
        known.record = { ...record, createdAt: known.record.createdAt };
        known.seenAt = now;
        continue;
      }
      // Another instance carries the name. One this process just launched stays until a list shows it or it is
      // overdue (lists lag launches); anything else gives way to what the list shows.
      const justLaunched =
        known !== undefined && known.launchedHere && known.seenAt >= snapshot.startedAt - listLagMs;
      if (!justLaunched) {
        this.#byName.set(name, { record, parameterWritten: false, launchedHere: false, seenAt: now });
      }
    }
    for (const [name, known] of this.#byName) {
      if (!listed.has(known.record.id) && known.seenAt < snapshot.startedAt - listLagMs) {
        this.#byName.delete(name);
      }
    }
    for (const [id, at] of this.#deleted) {
      if (!listed.has(id) && at < snapshot.startedAt - listLagMs) this.#deleted.delete(id);
    }
    for (const record of snapshot.records) {
      if (record.state === 'terminated' && !this.#endSeen.has(record.id)) this.#endSeen.set(record.id, now);
    }
    for (const id of this.#endSeen.keys()) if (!listed.has(id)) this.#endSeen.delete(id);
  }

  #view(): Ec2InstanceRecord[] {
    const now = this.#d.now();
    const retention = this.#d.timings.terminatedRetentionMs;
    const out: Ec2InstanceRecord[] = [];
    for (const { record } of this.#byName.values()) {
      if (this.#deleted.has(record.id)) continue;
      if (record.state === 'terminated') {
        const endedAt = record.endedAt ?? this.#endSeen.get(record.id) ?? now;
        if (endedAt < now - retention) continue;
      }
      out.push(record);
    }
    return out;
  }

  #maybeCollect(snapshot: Snapshot): void {
    if (this.#prefixes.size === 0 || this.#gc !== undefined) return;
    if (this.#d.now() - this.#lastGcAt < this.#d.timings.gcIntervalMs) return;
    this.#runCollect(snapshot, AbortSignal.timeout(this.#d.timings.listTimeoutMs)).catch((error: unknown) => {
      this.#log.warn({ err: error }, 'runner parameter garbage collection failed; the next one retries');
    });
  }

  /** Runs parameter GC now, after a fresh list (a GC already running is joined instead). */
  async collectParameters(signal: AbortSignal): Promise<GcResult> {
    if (this.#gc !== undefined) return joinShared(this.#gc, signal, 'parameter garbage collection');
    const snapshot = await joinShared(
      (this.#inflight ??= this.#fetch().finally(() => {
        this.#inflight = undefined;
      })),
      signal,
      `DescribeInstances (fleet ${this.fleet})`,
    );
    if (this.#gc !== undefined) return joinShared(this.#gc, signal, 'parameter garbage collection');
    return this.#runCollect(snapshot, signal);
  }

  /** Resolves when no garbage collection is running (tests, shutdown). */
  async settled(): Promise<void> {
    await this.#gc?.catch(() => undefined);
  }

  #runCollect(snapshot: Snapshot, signal: AbortSignal): Promise<GcResult> {
    this.#lastGcAt = this.#d.now();
    const run = this.#collect(snapshot, signal).finally(() => {
      if (this.#gc === run) this.#gc = undefined;
    });
    this.#gc = run;
    return run;
  }

  /**
   * Deletes the parameters under each prefix whose instance is not a live instance of the fleet: not pending or
   * running in the list, not launched here since. Values are never read (WithDecryption false, and the field is
   * dropped at once); names are `<prefix>/<instance id>`, anything else under the prefix is left alone.
   */
  async #collect(snapshot: Snapshot, signal: AbortSignal): Promise<GcResult> {
    const { ssm, stats, timings } = this.#d;
    stats.parameterGcRuns++;
    const live = new Set<string>();
    for (const record of snapshot.records) if (isLive(record)) live.add(record.id);
    for (const { record } of this.#byName.values()) {
      if (isLive(record) && !this.#deleted.has(record.id)) live.add(record.id);
    }
    const newest = snapshot.startedAt - timings.gcMinAgeMs;
    let examined = 0;
    let deleted = 0;
    for (const prefix of [...this.#prefixes.keys()]) {
      const stale: string[] = [];
      try {
        let token: string | undefined;
        do {
          const page = await ssm.send(
            new GetParametersByPathCommand({
              Path: prefix,
              Recursive: false,
              WithDecryption: false,
              MaxResults: 10,
              ...(token !== undefined ? { NextToken: token } : {}),
            }),
            { abortSignal: signal },
          );
          for (const parameter of page.Parameters ?? []) {
            const name = parameter.Name ?? '';
            const id = name.startsWith(`${prefix}/`) ? name.slice(prefix.length + 1) : '';
            if (!/^i-[0-9a-f]+$/.test(id)) continue;
            examined++;
            if (live.has(id)) continue;
            const modified = parameter.LastModifiedDate?.getTime();
            if (modified === undefined || modified > newest) continue;
            stale.push(name);
          }
          token = page.NextToken;
        } while (token);
      } catch (error) {
        throw awsError('GetParametersByPath', error, { subject: prefix, signal });
      }
      for (let i = 0; i < stale.length; i += 10) {
        const names = stale.slice(i, i + 10);
        try {
          const answer = await ssm.send(new DeleteParametersCommand({ Names: names }), {
            abortSignal: signal,
          });
          deleted += answer.DeletedParameters?.length ?? 0;
        } catch (error) {
          throw awsError('DeleteParameters', error, { subject: prefix, signal });
        }
      }
      if (stale.length > 0) {
        this.#log.info(
          { prefix, parameters: stale.length },
          'deleted runner parameters whose instance is gone',
        );
      }
    }
    stats.parametersCollected += deleted;
    return { examined, deleted };
  }
}

function* instancesOf(
  reservations: readonly { Instances?: Ec2Instance[] }[] | undefined,
): Generator<Ec2Instance> {
  for (const reservation of reservations ?? []) yield* reservation.Instances ?? [];
}
