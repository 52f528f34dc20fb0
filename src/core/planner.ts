/**
 * The pure planner: `plan(snapshot, config, now, options) -> Action[]`. No I/O, no clock, no randomness of its own
 * (names come from `options.random`), so the same inputs always give the same actions. docs/core.md states each rule
 * and the invariant (DESIGN.md section 3) it serves.
 *
 * Freshness: an observation (runner list, instance list) only counts against a record when it was taken after the
 * record's last state change; an older list may predate what the record says, so the planner waits for the next one.
 */
import type { FleetConfig, ScaleSetConfig } from '../config/types.js';
import type { RunnerState } from './types.js';
import type {
  Action,
  JobSnapshot,
  ObservedInstance,
  RunnerSnapshot,
  ScaleSetSnapshot,
  Snapshot,
} from './plan-types.js';
import { isRunnerOf, runnerName, type RandomSource } from './names.js';
import { NameIndex } from './name-index.js';

export interface PlanOptions {
  /** Source of new runner names. Pass a seeded generator for reproducible plans. */
  readonly random: RandomSource;
  /** Most job status checks per scale set per pass (bounds API use after an outage). Default 20. */
  readonly maxJobChecks?: number;
  /**
   * Most new runners per scale set per pass (default 1,000); the rest follow in the next pass, planned at once. A
   * burst of thousands of jobs then costs several short passes instead of one long one (the executor creates 32 at
   * a time and GitHub accepts about 180 runner-creating calls a minute, so nothing is lost by planning later).
   */
  readonly maxCreatesPerPass?: number;
}

type ControllerTimings = FleetConfig['controller'];

/** In-progress jobs are checked this many resync intervals apart (a missed `completed` only affects display). */
export const IN_PROGRESS_CHECK_FACTOR = 10;
const DEFAULT_MAX_JOB_CHECKS = 20;
const DEFAULT_MAX_CREATES_PER_PASS = 1000;

export function plan(snapshot: Snapshot, config: FleetConfig, now: number, options: PlanOptions): Action[] {
  const actions: Action[] = [];
  for (const set of config.scaleSets) {
    const s = snapshot.scaleSets.get(set.name);
    if (s !== undefined) actions.push(...planScaleSet(s, set, config.controller, now, options));
  }
  return actions;
}

const RUNNER_EXITED = 'runner exited';
const SUCCEEDED_WHILE_BUSY = 'instance succeeded while running a job';
const REMOVED_AFTER_JOB = 'registration removed by GitHub after its job';
const REMOVED_UNSEEN_JOB = 'registration removed by GitHub after a job not yet reported';
/** Reasons an ephemeral runner ends with after running a job (see #ranUnseenJob). */
const RAN_A_JOB: ReadonlySet<string> = new Set([
  RUNNER_EXITED,
  SUCCEEDED_WHILE_BUSY,
  REMOVED_AFTER_JOB,
  REMOVED_UNSEEN_JOB,
]);

const TERMINAL: ReadonlySet<RunnerState> = new Set(['finished', 'failed', 'bootstrap-timeout']);

export function isTerminal(state: RunnerState): boolean {
  return TERMINAL.has(state);
}

/** A state change the planner decides for one record in this pass. */
interface Transition {
  readonly state: RunnerState;
  readonly reason: string;
  readonly failure?: boolean;
  readonly instanceGone?: boolean;
  readonly registrationGone?: boolean;
  readonly githubId?: number;
}

class ScaleSetPlanner {
  readonly actions: Action[] = [];
  #wake = Infinity;
  readonly #s: ScaleSetSnapshot;
  readonly #set: ScaleSetConfig;
  readonly #timings: ControllerTimings;
  readonly #now: number;
  readonly #options: PlanOptions;
  readonly #records = new NameIndex<RunnerSnapshot>();

  constructor(
    s: ScaleSetSnapshot,
    set: ScaleSetConfig,
    timings: ControllerTimings,
    now: number,
    options: PlanOptions,
  ) {
    this.#s = s;
    this.#set = set;
    this.#timings = timings;
    this.#now = now;
    this.#options = options;
    for (const r of s.runners) this.#records.set(r.name, r);
  }

  run(): Action[] {
    // Parallel arrays rather than one small object per record: this runs over every record on every pass.
    const records: RunnerSnapshot[] = [];
    const states: RunnerState[] = [];
    let ranUnseen = 0;
    for (const r of this.#s.runners) {
      if (r.state === 'deleted') {
        if (this.#ranUnseenJob(r)) ranUnseen++;
        continue;
      }
      if (r.inFlight) {
        records.push(r);
        states.push(r.state);
        continue;
      }
      const t = this.#transition(r);
      let current = r;
      if (t !== null) {
        this.#mark(r, t);
        current = {
          ...r,
          state: t.state,
          reason: t.reason,
          stateChangedAt: this.#now,
          instanceDeletedAt: t.instanceGone ? this.#now : r.instanceDeletedAt,
          registrationDeletedAt: t.registrationGone ? this.#now : r.registrationDeletedAt,
          githubId: t.githubId ?? r.githubId,
        };
      }
      if (this.#ranUnseenJob(current)) ranUnseen++;
      const state = isTerminal(current.state) ? this.#cleanup(current) : current.state;
      if (state !== 'deleted') {
        records.push(current);
        states.push(state);
      }
    }
    this.#scale(records, states, ranUnseen);
    this.#orphanRegistrations();
    this.#strayInstances();
    this.#checkJobs();
    if (this.#wake !== Infinity)
      this.actions.push({ type: 'wake-at', scaleSet: this.#set.name, at: this.#wake });
    return this.actions;
  }

  #wakeAt(at: number): void {
    if (at > this.#now && at < this.#wake) this.#wake = at;
  }

  #mark(r: RunnerSnapshot, t: Transition): void {
    this.actions.push({
      type: 'mark-runner',
      scaleSet: this.#set.name,
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
  #ghFresh(r: RunnerSnapshot): boolean {
    const at = this.#s.github.at;
    return at !== null && at > r.stateChangedAt;
  }

  #instFresh(r: RunnerSnapshot): boolean {
    const at = this.#s.instances.at;
    return at !== null && at > r.stateChangedAt;
  }

  /** The instance observation for a record, ignoring one older than our own delete of it. */
  #instanceOf(r: RunnerSnapshot): ObservedInstance | undefined {
    const instance = this.#s.instances.items.get(r.name);
    if (
      instance !== undefined &&
      r.instanceDeletedAt !== null &&
      instance.observedAt <= r.instanceDeletedAt
    ) {
      return undefined;
    }
    return instance;
  }

  /** The lifecycle rules for one record not being worked on by the executor. */
  #transition(r: RunnerSnapshot): Transition | null {
    switch (r.state) {
      case 'requested':
        return null; // resumed or cancelled by #scale, which knows whether it is still needed
      case 'creating':
        return this.#interruptedCreate(r);
      case 'starting':
      case 'idle':
      case 'busy':
        return this.#live(r);
      default:
        return null;
    }
  }

  /**
   * `creating` and nothing in flight: the process that started the create is gone (crash, restart). Its JIT config
   * is lost with it, so the record either found its instance (the create reached the provider) or is abandoned.
   */
  #interruptedCreate(r: RunnerSnapshot): Transition | null {
    if (this.#instanceOf(r) !== undefined) {
      return { state: 'starting', reason: 'instance found after an interrupted create' };
    }
    if (!this.#instFresh(r) || !this.#ghFresh(r)) return null; // wait for lists taken after the interruption
    const listed = this.#s.github.runners.get(r.name);
    if (listed !== undefined) {
      return {
        state: 'finished',
        reason: 'create interrupted; removing its registration',
        instanceGone: true,
        githubId: listed.id,
      };
    }
    return {
      state: 'deleted',
      reason: 'create interrupted before registration',
      instanceGone: true,
      registrationGone: true,
    };
  }

  /** starting, idle, busy: follow jobs, GitHub and the instance. */
  #live(r: RunnerSnapshot): Transition | null {
    const ephemeral = this.#set.ephemeral;
    const jit = this.#set.registration === 'jit';
    const instFresh = this.#instFresh(r);
    const instance = this.#instanceOf(r);
    const ghFresh = this.#ghFresh(r);
    const gh = this.#s.github.runners.get(r.name);
    // A persistent runner runs many jobs: only news recorded after its last state change counts. An ephemeral
    // runner (or one still starting) has only ever had this one job.
    const job =
      r.job !== null && (ephemeral || r.state === 'starting' || r.job.at >= r.stateChangedAt) ? r.job : null;
    const instanceSeen =
      instance !== undefined && instance.observedAt >= r.stateChangedAt ? instance : undefined;
    // A runner list begun after we recorded the job's completion that still shows the runner busy means it runs
    // another job (persistent) or GitHub disagrees: either way, not done.
    const listedAt = this.#s.github.at;
    const completed =
      job?.status === 'completed' && !(gh?.busy === true && listedAt !== null && listedAt >= job.at)
        ? job
        : null;
    const exited = instanceSeen?.state === 'succeeded' || instanceSeen?.state === 'failed';

    if (r.state === 'busy') {
      if (completed !== null) {
        return ephemeral
          ? { state: 'finished', reason: `job ${completed.id} completed`, registrationGone: true }
          : { state: 'idle', reason: `job ${completed.id} completed` };
      }
      if (exited) {
        // An ephemeral runner that ends its job normally is removed by GitHub itself.
        const gone = ephemeral && instanceSeen.state === 'succeeded';
        return {
          state: 'finished',
          reason:
            instanceSeen.state === 'succeeded' ? SUCCEEDED_WHILE_BUSY : 'instance failed while running a job',
          ...(gone ? { registrationGone: true } : {}),
        };
      }
      if (instFresh && instance === undefined) {
        return { state: 'finished', reason: 'instance disappeared while running a job', instanceGone: true };
      }
      if (ghFresh && ephemeral && gh === undefined) {
        return {
          state: 'finished',
          reason: REMOVED_AFTER_JOB,
          registrationGone: true,
        };
      }
      if (ghFresh && !ephemeral && gh !== undefined && gh.status === 'online' && !gh.busy) {
        return { state: 'idle', reason: 'GitHub reports the runner idle' };
      }
      return null;
    }

    // starting or idle
    if (job?.status === 'in_progress') return { state: 'busy', reason: `running job ${job.id}` };
    if (completed !== null && ephemeral) {
      return { state: 'finished', reason: `job ${completed.id} completed`, registrationGone: true };
    }
    const tookJob = r.job !== null;
    if (exited) {
      if (instanceSeen.state === 'succeeded') {
        // An ephemeral runner exits 0 after its job, and GitHub removes its registration; a leftover one is an
        // orphan and the orphan rule removes it after the grace period.
        return {
          state: 'finished',
          reason: RUNNER_EXITED,
          ...(ephemeral ? { registrationGone: true } : {}),
        };
      }
      return {
        state: 'failed',
        reason: `instance failed${instanceSeen.message ? `: ${instanceSeen.message}` : ''}`,
        failure: !tookJob,
      };
    }
    if (instFresh && instance === undefined) {
      return { state: 'failed', reason: 'instance disappeared', failure: !tookJob, instanceGone: true };
    }
    if (ghFresh && gh !== undefined && gh.busy) {
      return { state: 'busy', reason: 'GitHub reports the runner busy', githubId: gh.id };
    }
    if (r.state === 'starting' && ghFresh && gh !== undefined && gh.status === 'online') {
      return { state: 'idle', reason: 'runner online', githubId: gh.id };
    }
    // A JIT registration exists before the instance does, so its absence from a later list means it was removed
    // (expired unused, or deleted by hand). A token-mode runner registers itself later, so only idle ones count.
    if (ghFresh && gh === undefined && (jit || r.state === 'idle')) {
      if (tookJob)
        return { state: 'finished', reason: 'registration removed after a job', registrationGone: true };
      // GitHub removes an ephemeral runner's registration when its job ends; under webhook lag (a burst) that is
      // seen before the job's webhooks, while the runner still looks starting. Reading it as a failure would buy the
      // job a second runner; it is counted as having run a job not yet reported (#ranUnseenJob). A runner whose
      // instance failed is a failure above; one whose registration expired unused times its job out the same way.
      if (ephemeral) return { state: 'finished', reason: REMOVED_UNSEEN_JOB, registrationGone: true };
      return {
        state: 'failed',
        reason: 'registration removed before the runner took a job',
        failure: true,
        registrationGone: true,
      };
    }
    if (r.state === 'starting') {
      const deadline = r.stateChangedAt + this.#set.bootstrapTimeout;
      const gh = this.#s.github;
      if (this.#now >= deadline && gh.at !== null && gh.at >= deadline) {
        return { state: 'bootstrap-timeout', reason: 'runner did not come online in time', failure: true };
      }
      // The timeout fires on the first runner list taken after the deadline.
      this.#wakeAt(deadline);
    }
    return null;
  }

  /**
   * finished / failed / bootstrap-timeout: remove the registration first (GitHub refuses to remove a busy runner,
   * and a removed one cannot take a job), then the instance, then record `deleted`. Returns the state after it.
   */
  #cleanup(r: RunnerSnapshot): RunnerState {
    const ghFresh = this.#ghFresh(r);
    const gh = this.#s.github.runners.get(r.name);
    const instFresh = this.#instFresh(r);
    const instance = this.#instanceOf(r);
    const exited = instance?.state === 'succeeded' || instance?.state === 'failed';
    // The newest evidence wins: our own removal, unless a list taken after it still shows the registration.
    const listedAt = this.#s.github.at;
    let registration: boolean | null;
    if (r.registrationDeletedAt !== null) {
      registration = listedAt !== null && listedAt > r.registrationDeletedAt && gh !== undefined;
    } else if (ghFresh) registration = gh !== undefined;
    else if (r.githubId !== null) registration = true;
    else registration = null; // unknown until a runner list taken after this state
    // `instance` is already blind to observations older than our own delete.
    const instancePresent = instance !== undefined || (r.instanceDeletedAt === null && !instFresh);

    if (registration === true) {
      const id = gh?.id ?? r.githubId;
      const busyNow = ghFresh && gh !== undefined && gh.busy;
      if (busyNow && !exited) return r.state; // our record is behind GitHub: wait until the job ends
      if (id !== null) {
        this.actions.push({
          type: 'deregister-runner',
          scaleSet: this.#set.name,
          name: r.name,
          runnerId: id,
          reason: r.reason ?? r.state,
          checkBusy: !exited && (!ghFresh || gh?.status === 'online'),
          retire: false,
        });
      }
      // A stopped instance runs nothing: its removal need not wait for the registration's.
      if (instancePresent && exited) this.#deleteInstance(r.name, r.reason ?? r.state);
      return r.state;
    }
    if (registration === null) {
      if (instancePresent && exited) this.#deleteInstance(r.name, r.reason ?? r.state);
      return r.state;
    }
    if (instancePresent) {
      this.#deleteInstance(r.name, r.reason ?? r.state);
      return r.state;
    }
    this.actions.push({
      type: 'mark-runner',
      scaleSet: this.#set.name,
      name: r.name,
      state: 'deleted',
      reason: r.reason ?? r.state,
      failure: false,
    });
    return 'deleted';
  }

  #deleteInstance(name: string, reason: string): void {
    this.actions.push({ type: 'delete-instance', scaleSet: this.#set.name, name, reason });
  }

  /** desired = min(max, busy + queued + minIdle); never more than max non-deleted records. */
  /**
   * An ephemeral runner that ended after a job (it exited 0, or ended busy) while no webhook or check has told us
   * which job: that job is still among the ones we count as queued, until its `in_progress` or `completed` arrives
   * and names the runner. Under webhook lag (a burst: the instance's exit is seen before the job's webhooks) counting
   * it would buy the finished job a second runner, which then idles. Counted for two resync intervals at most; by
   * then the webhook came, or a status check corrected the job.
   */
  #ranUnseenJob(r: RunnerSnapshot): boolean {
    return (
      this.#set.ephemeral &&
      r.job === null &&
      r.reason !== null &&
      RAN_A_JOB.has(r.reason) &&
      (r.state === 'finished' || r.state === 'deleted') &&
      this.#now - r.stateChangedAt < 2 * this.#timings.resyncInterval
    );
  }

  #scale(records: readonly RunnerSnapshot[], states: readonly RunnerState[], ranUnseen: number): void {
    const set = this.#set;
    let nonDeleted = 0;
    let active = 0;
    let busy = 0;
    let busyUnknown = 0; // busy, but no in-progress job known for it (GitHub said so before the webhook came)
    const parked: RunnerSnapshot[] = []; // requested, not in flight: resumable or cancellable
    const idle: RunnerSnapshot[] = [];
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const state = states[i]!;
      nonDeleted++;
      // An idle runner in flight is being retired (nothing else works on idle runners): it is leaving.
      if (state === 'idle' && record.inFlight) continue;
      if (
        state === 'requested' ||
        state === 'creating' ||
        state === 'starting' ||
        state === 'idle' ||
        state === 'busy'
      ) {
        active++;
      }
      if (state === 'busy') {
        busy++;
        if (record.job?.status !== 'in_progress') busyUnknown++;
      }
      if (state === 'requested' && !record.inFlight) parked.push(record);
      if (state === 'idle' && !record.inFlight) idle.push(record);
    }
    let queued = 0;
    for (const j of this.#s.jobs) if (j.status === 'queued' && j.unverified !== true) queued++;
    // A busy runner whose job we have not heard of is running one of the jobs we still think are queued (or a job
    // of another scale set, briefly): counting both would create a runner for a job that already has one. The same
    // holds for an ephemeral runner that already ended after such a job (#ranUnseenJob).
    const desired = Math.min(set.max, busy + Math.max(0, queued - busyUnknown - ranUnseen) + set.minIdle);
    const backingOff = this.#now < this.#s.backoff.until;

    if (active <= desired) {
      for (const r of parked) {
        if (backingOff) break;
        this.actions.push({ type: 'create-runner', scaleSet: set.name, name: r.name, resume: true });
      }
      const missing = desired - active;
      const room = set.max - nonDeleted;
      const count = Math.min(missing, room);
      if (count > 0) {
        if (backingOff) this.#wakeAt(this.#s.backoff.until);
        else {
          const cap = Math.max(1, this.#options.maxCreatesPerPass ?? DEFAULT_MAX_CREATES_PER_PASS);
          this.#create(Math.min(count, cap));
          if (count > cap) this.#wakeAt(this.#now + 1);
        }
      } else if (parked.length > 0 && backingOff) {
        this.#wakeAt(this.#s.backoff.until);
      }
      return;
    }

    let excess = active - desired;
    // Cancel intents first: nothing exists for them yet.
    for (const r of parked) {
      if (excess > 0) {
        this.actions.push({
          type: 'mark-runner',
          scaleSet: set.name,
          name: r.name,
          state: 'deleted',
          reason: 'no longer needed',
          failure: false,
          instanceGone: true,
          registrationGone: true,
        });
        excess--;
      } else if (!backingOff) {
        this.actions.push({ type: 'create-runner', scaleSet: set.name, name: r.name, resume: true });
      } else {
        this.#wakeAt(this.#s.backoff.until);
      }
    }
    if (excess <= 0) return;
    // Then retire the runners idle the longest, once their idle timeout has passed.
    idle.sort((a, b) => a.stateChangedAt - b.stateChangedAt || (a.name < b.name ? -1 : 1));
    for (const r of idle.slice(0, excess)) {
      const expires = r.stateChangedAt + set.idleTimeout;
      if (this.#now < expires) {
        this.#wakeAt(expires);
        continue;
      }
      const id = this.#s.github.runners.get(r.name)?.id ?? r.githubId;
      if (id === null) continue; // not registered as far as we know: a list will tell
      this.actions.push({
        type: 'deregister-runner',
        scaleSet: set.name,
        name: r.name,
        runnerId: id,
        reason: 'idle timeout',
        checkBusy: true,
        retire: true,
      });
    }
  }

  #create(count: number): void {
    const taken = (name: string): boolean =>
      this.#records.has(name) || this.#s.github.runners.has(name) || this.#s.instances.items.has(name);
    const fresh = new NameIndex<true>();
    for (let i = 0; i < count; i++) {
      let name = runnerName(this.#set.name, this.#options.random);
      while (taken(name) || fresh.has(name)) name = runnerName(this.#set.name, this.#options.random);
      fresh.set(name, true);
      this.actions.push({ type: 'create-runner', scaleSet: this.#set.name, name, resume: false });
    }
  }

  /** Recently deleted record for a name, when the observation predates its deletion: the observation is stale. */
  #staleAgainst(name: string, observedAt: number | null): boolean {
    const r = this.#records.get(name);
    return (
      r !== undefined && r.state === 'deleted' && (observedAt === null || observedAt <= r.stateChangedAt)
    );
  }

  /** A registration with our name and no instance (and no live record) is removed after the grace period. */
  #orphanRegistrations(): void {
    const gh = this.#s.github;
    const inst = this.#s.instances;
    for (const g of gh.runners.values()) {
      if (!isRunnerOf(this.#set.name, g.name)) continue; // never touch a runner this fleet did not name
      const r = this.#records.get(g.name);
      if (r !== undefined && (r.state !== 'deleted' || r.inFlight)) continue; // the record's rules own it
      if (this.#staleAgainst(g.name, gh.at)) continue;
      const hosted = inst.items.get(g.name);
      if (hosted !== undefined && !this.#staleAgainst(g.name, hosted.observedAt)) {
        continue; // an instance hosts it: the stray-instance rule handles the pair
      }
      if (inst.at === null || inst.at <= g.firstSeenAt) continue; // an instance list after we saw it is needed
      if (g.busy) continue;
      // Grace runs from first sight, or from our record's deletion: GitHub removes a finished ephemeral runner on
      // its own, a little later; deregistering it at once would spend an API call per job.
      const due = Math.max(g.firstSeenAt, r?.stateChangedAt ?? 0) + this.#timings.orphanGracePeriod;
      if (this.#now < due) {
        this.#wakeAt(due);
        continue;
      }
      this.actions.push({
        type: 'deregister-runner',
        scaleSet: this.#set.name,
        name: g.name,
        runnerId: g.id,
        reason: 'orphan registration (no instance)',
        checkBusy: false,
        retire: false,
      });
    }
  }

  /** An instance with no live record: remove its registration if any (unless busy), then the instance. */
  #strayInstances(): void {
    const gh = this.#s.github;
    for (const i of this.#s.instances.items.values()) {
      const r = this.#records.get(i.name);
      if (r !== undefined && (r.state !== 'deleted' || r.inFlight)) continue;
      if (this.#staleAgainst(i.name, i.observedAt)) continue;
      const exited = i.state === 'succeeded' || i.state === 'failed';
      // Busy in a list not strictly older than our deletion of the record: it may be current; leave it alone.
      const listed = gh.runners.get(i.name);
      const busyMaybeNow =
        listed?.busy === true && !(r !== undefined && gh.at !== null && gh.at < r.stateChangedAt);
      if (busyMaybeNow && !exited) continue;
      const g = this.#staleAgainst(i.name, gh.at) ? undefined : listed;
      if (g !== undefined) {
        if (g.busy && !exited) continue; // never take an instance from under a job
        if (!isRunnerOf(this.#set.name, i.name)) {
          // Never touch a registration this fleet did not name, even if an instance of ours carries its name.
          if (exited) this.#deleteInstance(i.name, 'stopped instance without a runner record');
          continue;
        }
        this.actions.push({
          type: 'deregister-runner',
          scaleSet: this.#set.name,
          name: i.name,
          runnerId: g.id,
          reason: 'instance without a runner record',
          checkBusy: !exited,
          retire: false,
        });
        if (exited) this.#deleteInstance(i.name, 'stopped instance without a runner record');
        continue;
      }
      if (gh.at === null || gh.at <= i.createdAt) continue; // a runner list after its creation is needed
      if (exited || r !== undefined) {
        this.#deleteInstance(i.name, 'instance without a runner');
        continue;
      }
      const due = i.createdAt + this.#set.bootstrapTimeout;
      if (this.#now < due) {
        this.#wakeAt(due);
        continue;
      }
      this.#deleteInstance(i.name, 'instance without a runner after the bootstrap timeout');
    }
  }

  /**
   * Jobs waiting longer than a resync get a status check against GitHub (repairs missed webhooks). Jobs known only
   * from before a restart go first and as fast as passes allow: they count for nothing until checked, and each needs
   * one check. Re-checks of the others share a budget of `maxJobChecks` per scale set per resync interval (checks
   * made within the last interval, or under way, use it up), so a backlog of thousands of queued jobs (a scale set at
   * max) costs a bounded number of API calls instead of one per job per interval, which would spend GitHub's hourly
   * budget in minutes.
   */
  #checkJobs(): void {
    const interval = this.#timings.resyncInterval;
    const max = this.#options.maxJobChecks ?? DEFAULT_MAX_JOB_CHECKS;
    let spent = 0;
    let budgetBackAt = Infinity;
    for (const j of this.#s.jobs) {
      if (j.unverified === true && j.status === 'queued') continue;
      if (j.inFlight) spent++;
      else if (j.checkedAt !== null && this.#now - j.checkedAt < interval) {
        spent++;
        budgetBackAt = Math.min(budgetBackAt, j.checkedAt + interval);
      }
    }
    // The most overdue jobs, kept sorted in small arrays: after an outage thousands may be due at once.
    const unverified = new TopJobs(max);
    const recheck = new TopJobs(Math.max(0, max - spent));
    for (const j of this.#s.jobs) {
      if (j.inFlight) continue;
      if (j.unverified === true && j.status === 'queued') {
        unverified.offer(j, -Infinity);
        continue;
      }
      const since = j.checkedAt ?? (j.status === 'queued' ? j.queuedAt : (j.startedAt ?? j.queuedAt));
      const every = j.status === 'queued' ? interval : interval * IN_PROGRESS_CHECK_FACTOR;
      if (this.#now - since < every) this.#wakeAt(since + every);
      else recheck.offer(j, since);
    }
    for (const { job } of [...unverified.top, ...recheck.top]) {
      this.actions.push({
        type: 'check-job',
        scaleSet: this.#set.name,
        jobId: job.id,
        owner: job.owner,
        repo: job.repo,
      });
    }
    if (unverified.due > unverified.top.length) this.#wakeAt(this.#now + 1);
    // Out of budget: the next pass that may check is when the oldest recent check leaves the interval (a check
    // under way wakes the scale set when it ends).
    if (recheck.due > recheck.top.length) this.#wakeAt(recheck.limit > 0 ? this.#now + 1 : budgetBackAt);
  }
}

/** The `limit` most overdue of the jobs offered (oldest `since` first, then lowest id), and how many were offered. */
class TopJobs {
  readonly top: { job: JobSnapshot; since: number }[] = [];
  due = 0;
  readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  offer(job: JobSnapshot, since: number): void {
    this.due++;
    if (this.limit <= 0) return;
    const top = this.top;
    const last = top[top.length - 1];
    if (top.length >= this.limit && last !== undefined && !before(since, job.id, last.since, last.job.id))
      return;
    let i = top.length;
    while (i > 0 && before(since, job.id, top[i - 1]!.since, top[i - 1]!.job.id)) i--;
    top.splice(i, 0, { job, since });
    if (top.length > this.limit) top.pop();
  }
}

function before(since: number, id: number, otherSince: number, otherId: number): boolean {
  return since < otherSince || (since === otherSince && id < otherId);
}

/** Plans one scale set. `plan` calls it for each configured scale set. */
export function planScaleSet(
  s: ScaleSetSnapshot,
  set: ScaleSetConfig,
  timings: ControllerTimings,
  now: number,
  options: PlanOptions,
): Action[] {
  return new ScaleSetPlanner(s, set, timings, now, options).run();
}
