/**
 * Runner scale sets as GitHub's Actions service keeps them: a named set of runners in a runner group of a scope, with
 * at most one message session at a time and a message queue. Jobs whose labels the scale set covers (scope first, as
 * for any runner) are tracked by the scale set and reported through its queue as JobAvailable / JobAssigned /
 * JobStarted / JobCompleted items, batched up to 50 per message. A message stays in the queue until it is deleted
 * (the acknowledgement); an unacknowledged message is delivered again to a new session, or to the same session once
 * `redeliveryMs` has passed. Statistics are computed from the tracked jobs and the scale set's runners.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Job, Repo, Runner, RunnerGroup, ScopeRef } from './model.js';
import { scopeKey } from './model.js';
import type { RunnerRegistry } from './runner-registry.js';

export interface ScaleSetStatistics {
  totalAvailableJobs: number;
  totalAcquiredJobs: number;
  totalAssignedJobs: number;
  totalRunningJobs: number;
  totalRegisteredRunners: number;
  totalBusyRunners: number;
  totalIdleRunners: number;
}

export type JobItemType = 'JobAvailable' | 'JobAssigned' | 'JobStarted' | 'JobCompleted';

interface TrackedJob {
  readonly requestId: number;
  readonly job: Job;
  state: 'available' | 'assigned' | 'running';
  assignedAt: number | null;
}

interface Message {
  readonly id: number;
  readonly items: Record<string, unknown>[];
  deliveredAt: number | null;
  deliveredTo: string | null;
}

export interface Session {
  readonly id: string;
  readonly ownerName: string;
  queueToken: string;
  queueTokenExpiresAt: number;
  lastSeenAt: number;
  /** Long polls of this session in flight: while one is open the session is alive. */
  polls: number;
}

export interface SimScaleSet {
  readonly id: number;
  name: string;
  readonly scope: ScopeRef;
  readonly scopeKey: string;
  group: RunnerGroup;
  labels: { name: string; type: string }[];
  labelsLower: Set<string>;
  disableUpdate: boolean;
  readonly createdAt: number;
  session: Session | null;
  /** Unacknowledged messages, in id order. */
  readonly messages: Map<number, Message>;
  /** Open jobs of this scale set by runner request id. */
  readonly jobs: Map<number, TrackedJob>;
  readonly runnerIds: Set<number>;
  /** Last X-ScaleSetMaxCapacity a poll sent, or null. */
  maxCapacity: number | null;
  /** Long polls waiting for a message. */
  readonly waiters: Set<() => void>;
  /** Sessions opened, oldest first (newest SESSION_LOG kept). */
  readonly sessionLog: SessionRecord[];
  /** Session creations refused with 409, oldest first (newest SESSION_LOG kept). */
  readonly conflicts: SessionConflict[];
}

/** A session as the log keeps it: who opened it, when, and how it ended. */
export interface SessionRecord {
  readonly id: string;
  readonly ownerName: string;
  readonly openedAt: number;
  /** When it ended: deleted, expired (its last call plus the session timeout) or gone with its scale set. */
  endedAt: number | null;
  end: 'deleted' | 'expired' | 'scale-set-deleted' | null;
}

/** A session creation answered 409. */
export interface SessionConflict {
  readonly at: number;
  /** The owner that asked. */
  readonly ownerName: string;
  /** The owner of the live session (`stale-listener` for an injected conflict). */
  readonly activeOwner: string;
}

/** What tests and the control API see of a scale set. */
export interface SimScaleSetView {
  readonly id: number;
  readonly name: string;
  readonly scope: string;
  readonly runnerGroupId: number;
  readonly labels: readonly string[];
  readonly session: { readonly id: string; readonly ownerName: string } | null;
  readonly unacknowledged: number;
  readonly maxCapacity: number | null;
  readonly statistics: ScaleSetStatistics;
  /** Sessions opened (the live one last), with how each ended. */
  readonly sessions: readonly Readonly<SessionRecord>[];
  /** Session creations refused with 409. */
  readonly conflicts: readonly SessionConflict[];
}

const MAX_ITEMS = 50;
/** Entries kept in a scale set's session log and conflict log. */
const SESSION_LOG = 100;

const keepNewest = <T>(log: T[], entry: T) => {
  log.push(entry);
  if (log.length > SESSION_LOG) log.splice(0, log.length - SESSION_LOG);
};

const RESULTS: Record<string, string> = { success: 'succeeded', failure: 'failed', cancelled: 'canceled' };

export class ScaleSetService {
  readonly #now: () => number;
  readonly #registry: RunnerRegistry;
  readonly #enterprise: string;
  readonly #sessionTimeoutMs: () => number;
  readonly #redeliveryMs: () => number;
  readonly #queueTokenTtlMs: () => number;
  readonly #secret = randomBytes(32);
  #sets = new Map<number, SimScaleSet>();
  #byJobId = new Map<number, { set: SimScaleSet; tracked: TrackedJob }>();
  #queueTokens = new Map<string, { setId: number; sessionId: string }>();
  #nextSetId = 1;
  #nextMessageId = 1;
  #nextRequestId = 7_000_001;
  /** Admin tokens, queue tokens and JIT configs issued (newest 10,000), for tests that look for leaks. */
  #issued: string[] = [];
  /** Acquire-jobs URL of a scale set (the Actions service's route), set by the routes. */
  acquireUrl: (set: SimScaleSet) => string = () => '';

  constructor(options: {
    now: () => number;
    registry: RunnerRegistry;
    enterprise: string;
    sessionTimeoutMs: () => number;
    redeliveryMs: () => number;
    queueTokenTtlMs: () => number;
    /** Whether jobs are offered (JobAvailable) and need acquiring, as on GHES; else assigned at once. */
    acquire: () => boolean;
  }) {
    this.#now = options.now;
    this.#registry = options.registry;
    this.#enterprise = options.enterprise.toLowerCase();
    this.#sessionTimeoutMs = options.sessionTimeoutMs;
    this.#redeliveryMs = options.redeliveryMs;
    this.#queueTokenTtlMs = options.queueTokenTtlMs;
    this.#acquire = options.acquire;
  }

  readonly #acquire: () => boolean;

  // --- admin tokens -------------------------------------------------------------------------------------------

  /** A JWT (HS256 with the simulator's secret) naming the scope; clients read its `exp` to refresh in time. The
   *  broker keeps the grant; the signature only makes the token look like the service's. */
  adminToken(scope: ScopeRef, ttlMs: number): { token: string; expiresAt: number } {
    const now = this.#now();
    const expiresAt = now + ttlMs;
    const header = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'HS256' })).toString('base64url');
    const payload = Buffer.from(
      JSON.stringify({
        sub: scopeKey(scope),
        scope,
        iat: Math.floor(now / 1000),
        exp: Math.floor(expiresAt / 1000),
        jti: randomUUID(),
      }),
    ).toString('base64url');
    const sig = createHmac('sha256', this.#secret).update(`${header}.${payload}`).digest('base64url');
    this.recordSecret(`${header}.${payload}.${sig}`);
    return { token: `${header}.${payload}.${sig}`, expiresAt };
  }

  recordSecret(value: string): void {
    if (this.#issued.length >= 10_000) this.#issued.splice(0, 1_000);
    this.#issued.push(value);
  }

  /** Secrets this service issued (see #issued). */
  issuedSecrets(): readonly string[] {
    return this.#issued;
  }

  // --- scale sets -----------------------------------------------------------------------------------------------

  list(scope: ScopeRef, groupId?: number, name?: string): SimScaleSet[] {
    const key = scopeKey(scope);
    return [...this.#sets.values()].filter(
      (s) =>
        s.scopeKey === key &&
        (groupId === undefined || s.group.id === groupId) &&
        (name === undefined || s.name.toLowerCase() === name.toLowerCase()),
    );
  }

  get(scope: ScopeRef, id: number): SimScaleSet | undefined {
    const set = this.#sets.get(id);
    return set && set.scopeKey === scopeKey(scope) ? set : undefined;
  }

  create(input: {
    scope: ScopeRef;
    name: string;
    group: RunnerGroup;
    labels: readonly string[];
    disableUpdate: boolean;
  }): SimScaleSet {
    const set: SimScaleSet = {
      id: this.#nextSetId++,
      name: input.name,
      scope: input.scope,
      scopeKey: scopeKey(input.scope),
      group: input.group,
      labels: [],
      labelsLower: new Set(),
      disableUpdate: input.disableUpdate,
      createdAt: this.#now(),
      session: null,
      messages: new Map(),
      jobs: new Map(),
      runnerIds: new Set(),
      maxCapacity: null,
      waiters: new Set(),
      sessionLog: [],
      conflicts: [],
    };
    this.setLabels(set, input.labels);
    this.#sets.set(set.id, set);
    return set;
  }

  setLabels(set: SimScaleSet, labels: readonly string[]): void {
    const names = labels.length > 0 ? labels : [set.name];
    set.labels = names.map((name) => ({ name, type: 'System' }));
    set.labelsLower = new Set(names.map((l) => l.toLowerCase()));
  }

  delete(set: SimScaleSet): void {
    this.#endSession(set, 'scale-set-deleted', this.#now());
    for (const tracked of set.jobs.values()) this.#byJobId.delete(tracked.job.id);
    this.#sets.delete(set.id);
  }

  addRunner(set: SimScaleSet, runner: Runner): void {
    set.runnerIds.add(runner.id);
  }

  /** The scale set a runner was created for, if any. */
  setOfRunner(runnerId: number): SimScaleSet | undefined {
    for (const set of this.#sets.values()) if (set.runnerIds.has(runnerId)) return set;
    return undefined;
  }

  statistics(set: SimScaleSet): ScaleSetStatistics {
    let available = 0;
    let acquired = 0;
    let running = 0;
    for (const t of set.jobs.values()) {
      if (t.state === 'available') available++;
      else if (t.state === 'assigned') acquired++;
      else running++;
    }
    let registered = 0;
    let busy = 0;
    let idle = 0;
    for (const id of [...set.runnerIds]) {
      const runner = this.#registry.get(id);
      if (!runner) {
        set.runnerIds.delete(id);
        continue;
      }
      registered++;
      if (runner.busy) busy++;
      else if (runner.status === 'online') idle++;
    }
    return {
      totalAvailableJobs: available,
      totalAcquiredJobs: acquired,
      totalAssignedJobs: acquired + running,
      totalRunningJobs: running,
      totalRegisteredRunners: registered,
      totalBusyRunners: busy,
      totalIdleRunners: idle,
    };
  }

  // --- sessions -------------------------------------------------------------------------------------------------

  /** A live session: one that was polled within the session timeout, or has a poll open. */
  liveSession(set: SimScaleSet): Session | null {
    const s = set.session;
    if (!s) return null;
    if (s.polls > 0 || this.#now() - s.lastSeenAt < this.#sessionTimeoutMs()) return s;
    this.#endSession(set, 'expired', s.lastSeenAt + this.#sessionTimeoutMs());
    return null;
  }

  /** Opens a session; the caller has made sure no live one exists (liveSession ends an expired one). */
  openSession(set: SimScaleSet, ownerName: string): Session {
    const session: Session = {
      id: randomUUID(),
      ownerName,
      queueToken: '',
      queueTokenExpiresAt: 0,
      lastSeenAt: this.#now(),
      polls: 0,
    };
    set.session = session;
    keepNewest(set.sessionLog, {
      id: session.id,
      ownerName,
      openedAt: session.lastSeenAt,
      endedAt: null,
      end: null,
    });
    this.#issueQueueToken(set, session);
    return session;
  }

  /** Records a session creation answered 409. */
  recordConflict(set: SimScaleSet, ownerName: string, activeOwner: string): void {
    keepNewest(set.conflicts, { at: this.#now(), ownerName, activeOwner });
  }

  refreshSession(set: SimScaleSet, session: Session): void {
    this.#queueTokens.delete(session.queueToken);
    session.lastSeenAt = this.#now();
    this.#issueQueueToken(set, session);
  }

  deleteSession(set: SimScaleSet): void {
    this.#endSession(set, 'deleted', this.#now());
  }

  /** The scale set and session of a live, unexpired queue token. */
  checkQueueToken(token: string): { set: SimScaleSet; session: Session } | undefined {
    const ref = this.#queueTokens.get(token);
    if (!ref) return undefined;
    const set = this.#sets.get(ref.setId);
    const session = set?.session;
    if (!set || !session || session.id !== ref.sessionId || session.queueToken !== token) return undefined;
    if (session.queueTokenExpiresAt <= this.#now()) return undefined;
    return { set, session };
  }

  #issueQueueToken(set: SimScaleSet, session: Session): void {
    session.queueToken = randomBytes(32).toString('base64url');
    session.queueTokenExpiresAt = this.#now() + this.#queueTokenTtlMs();
    this.recordSecret(session.queueToken);
    this.#queueTokens.set(session.queueToken, { setId: set.id, sessionId: session.id });
  }

  #endSession(set: SimScaleSet, end: NonNullable<SessionRecord['end']>, at: number): void {
    if (!set.session) return;
    const record = set.sessionLog.find((r) => r.id === set.session!.id);
    if (record) {
      record.endedAt = at;
      record.end = end;
    }
    this.#queueTokens.delete(set.session.queueToken);
    set.session = null;
    // Polls of the old session end (they answer 202 and the next call learns the token is gone).
    for (const wake of [...set.waiters]) wake();
  }

  /** Ends every session's queue token now (tests of the 401 path). */
  expireQueueTokens(): void {
    for (const set of this.#sets.values()) if (set.session) set.session.queueTokenExpiresAt = 0;
  }

  // --- messages -------------------------------------------------------------------------------------------------

  /** The next message for this session after `lastMessageId`, or an unacknowledged one due again; marks it sent. */
  nextMessage(set: SimScaleSet, session: Session, lastMessageId: number): Message | undefined {
    const now = this.#now();
    let due: Message | undefined;
    for (const m of set.messages.values()) {
      const fresh = m.id > lastMessageId || m.deliveredTo !== session.id;
      const stale = m.deliveredAt !== null && now - m.deliveredAt >= this.#redeliveryMs();
      if (fresh || stale) {
        due = m;
        break;
      }
    }
    if (!due) return undefined;
    due.deliveredAt = now;
    due.deliveredTo = session.id;
    return due;
  }

  acknowledge(set: SimScaleSet, messageId: number): boolean {
    return set.messages.delete(messageId);
  }

  /** Jobs offered to the scale set become assigned to it. Returns the ids acquired. */
  acquire(set: SimScaleSet, requestIds: readonly number[]): number[] {
    const out: number[] = [];
    for (const id of requestIds) {
      const tracked = set.jobs.get(id);
      if (!tracked || tracked.state !== 'available') continue;
      tracked.state = 'assigned';
      tracked.assignedAt = this.#now();
      out.push(id);
      this.#push(set, 'JobAssigned', tracked);
    }
    return out;
  }

  // --- jobs (from the job engine) -------------------------------------------------------------------------------

  onJob(action: 'queued' | 'in_progress' | 'completed', job: Job): void {
    if (action === 'queued') {
      const set = this.#setFor(job);
      if (!set) return;
      const tracked: TrackedJob = {
        requestId: this.#nextRequestId++,
        job,
        state: this.#acquire() ? 'available' : 'assigned',
        assignedAt: null,
      };
      if (tracked.state === 'assigned') tracked.assignedAt = this.#now();
      set.jobs.set(tracked.requestId, tracked);
      this.#byJobId.set(job.id, { set, tracked });
      this.#push(set, tracked.state === 'available' ? 'JobAvailable' : 'JobAssigned', tracked);
      return;
    }
    const ref = this.#byJobId.get(job.id);
    if (!ref) return;
    if (action === 'in_progress') {
      ref.tracked.state = 'running';
      this.#push(ref.set, 'JobStarted', ref.tracked);
      return;
    }
    ref.set.jobs.delete(ref.tracked.requestId);
    this.#byJobId.delete(job.id);
    this.#push(ref.set, 'JobCompleted', ref.tracked);
  }

  sets(): SimScaleSet[] {
    return [...this.#sets.values()];
  }

  view(set: SimScaleSet): SimScaleSetView {
    const session = this.liveSession(set);
    return {
      id: set.id,
      name: set.name,
      scope: set.scopeKey,
      runnerGroupId: set.group.id,
      labels: set.labels.map((l) => l.name),
      session: session ? { id: session.id, ownerName: session.ownerName } : null,
      unacknowledged: set.messages.size,
      maxCapacity: set.maxCapacity,
      statistics: this.statistics(set),
      sessions: set.sessionLog.map((r) => ({ ...r })),
      conflicts: [...set.conflicts],
    };
  }

  clear(): void {
    for (const set of [...this.#sets.values()]) this.delete(set);
    this.#byJobId.clear();
    this.#queueTokens.clear();
  }

  #setFor(job: Job): SimScaleSet | undefined {
    const wanted = job.labelsLower.filter((l) => l !== 'self-hosted');
    if (wanted.length === 0) return undefined;
    for (const set of this.#sets.values()) {
      if (!this.#serves(set.scope, job.repo)) continue;
      if (wanted.every((l) => set.labelsLower.has(l))) return set;
    }
    return undefined;
  }

  #serves(scope: ScopeRef, repo: Repo): boolean {
    switch (scope.kind) {
      case 'repo':
        return scopeKey(scope) === `repo:${repo.fullName.toLowerCase()}`;
      case 'org':
        return scope.org.toLowerCase() === repo.owner.login.toLowerCase();
      case 'enterprise':
        return scope.enterprise.toLowerCase() === this.#enterprise;
    }
  }

  #push(set: SimScaleSet, type: JobItemType, tracked: TrackedJob): void {
    const job = tracked.job;
    const item: Record<string, unknown> = {
      messageType: type,
      runnerRequestId: tracked.requestId,
      repositoryName: job.repo.name,
      ownerName: job.repo.owner.login,
      jobId: randomJobId(job.id),
      jobWorkflowRef: `${job.repo.fullName}/.github/workflows/ci.yml@refs/heads/main`,
      jobDisplayName: job.name,
      workflowRunId: job.runId,
      eventName: 'push',
      requestLabels: [...job.labels],
      queueTime: new Date(job.queuedAt).toISOString(),
      scaleSetAssignTime: tracked.assignedAt === null ? null : new Date(tracked.assignedAt).toISOString(),
      runnerAssignTime: job.startedAt === null ? null : new Date(job.startedAt).toISOString(),
      finishTime: job.completedAt === null ? null : new Date(job.completedAt).toISOString(),
    };
    if (type === 'JobAvailable') item.acquireJobUrl = this.acquireUrl(set);
    if (type === 'JobStarted' || type === 'JobCompleted') {
      item.runnerId = job.runnerId ?? 0;
      item.runnerName = job.runnerName ?? '';
    }
    if (type === 'JobCompleted') item.result = RESULTS[job.conclusion ?? ''] ?? 'failed';
    // Items join the newest message while it has not been sent and has room: a burst arrives in few messages.
    const last = [...set.messages.values()].at(-1);
    if (last && last.deliveredAt === null && last.items.length < MAX_ITEMS) last.items.push(item);
    else {
      const id = this.#nextMessageId++;
      set.messages.set(id, { id, items: [item], deliveredAt: null, deliveredTo: null });
    }
    for (const wake of [...set.waiters]) wake();
  }
}

/** The Actions service names a job by its own id (a GUID), not by the REST job id; stable per job. */
const jobIds = new Map<number, string>();
function randomJobId(restId: number): string {
  let id = jobIds.get(restId);
  if (id === undefined) {
    if (jobIds.size > 100_000) jobIds.clear();
    id = randomUUID();
    jobIds.set(restId, id);
  }
  return id;
}
