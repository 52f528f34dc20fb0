/** The simulator's world: organizations, repositories, the App installation, runners, runs and jobs. */
import type { KeyObject } from 'node:crypto';

export type ScopeRef =
  | { readonly kind: 'org'; readonly org: string }
  | { readonly kind: 'repo'; readonly owner: string; readonly repo: string }
  | { readonly kind: 'enterprise'; readonly enterprise: string };

/** Stable map key of a scope. Case-insensitive, like GitHub's logins and repository names. */
export function scopeKey(scope: ScopeRef): string {
  switch (scope.kind) {
    case 'org':
      return `org:${scope.org.toLowerCase()}`;
    case 'repo':
      return `repo:${scope.owner.toLowerCase()}/${scope.repo.toLowerCase()}`;
    case 'enterprise':
      return `enterprise:${scope.enterprise.toLowerCase()}`;
  }
}

export interface RunnerGroup {
  readonly id: number;
  readonly name: string;
  readonly isDefault: boolean;
}

export interface Org {
  readonly login: string;
  readonly id: number;
  readonly nodeId: string;
  readonly installationId: number;
  readonly createdAt: number;
}

export interface Repo {
  readonly id: number;
  readonly name: string;
  readonly owner: Org;
  readonly fullName: string;
  readonly nodeId: string;
  readonly createdAt: number;
  runNumber: number;
}

export interface Installation {
  readonly id: number;
  readonly account: Org;
  readonly createdAt: number;
}

export interface RunnerLabel {
  readonly id: number;
  readonly name: string;
  readonly type: 'read-only' | 'custom';
}

export interface Runner {
  readonly id: number;
  name: string;
  readonly scope: ScopeRef;
  readonly scopeKey: string;
  readonly groupId: number;
  readonly groupName: string;
  labels: RunnerLabel[];
  /** Lower-cased label names, for matching. */
  labelSet: Set<string>;
  /** Sorted lower-cased labels joined by newlines: identical label sets share matching work. */
  labelKey: string;
  readonly ephemeral: boolean;
  readonly mode: 'jit' | 'token';
  os: string;
  version: string | null;
  readonly createdAt: number;
  status: 'online' | 'offline';
  busy: boolean;
  jobId: number | null;
  /** OAuth client id the runner's credentials name. */
  readonly clientId: string;
  /** Public half of the key in `.credentials_rsaparams`: client assertions must verify against it. */
  readonly publicKey: KeyObject;
  /** JIT registrations are single-use: consumed at the first token exchange. */
  jitConsumed: boolean;
  /** ms epoch after which an unused JIT registration is deleted; null once used or for token mode. */
  jitExpiresAt: number | null;
  sessionId: string | null;
  lastSeenAt: number;
  /** Broker requests of this runner in flight (long polls, renewals): while one is open the runner is reachable. */
  connections: number;
}

export type JobStatus = 'queued' | 'in_progress' | 'completed';
export type JobConclusion = 'success' | 'failure' | 'cancelled';

export interface Job {
  readonly id: number;
  readonly runId: number;
  /** The attempt of its run this job belongs to (1, then 2... for each re-run). */
  readonly runAttempt: number;
  readonly repo: Repo;
  readonly name: string;
  readonly workflowName: string;
  readonly labels: readonly string[];
  readonly labelsLower: readonly string[];
  readonly labelKey: string;
  readonly durationMs: number;
  /** Conclusion the emulated runner reports when the job runs to its end. */
  readonly outcome: 'success' | 'failure';
  readonly headSha: string;
  status: JobStatus;
  conclusion: JobConclusion | null;
  runnerId: number | null;
  runnerName: string | null;
  runnerGroupId: number | null;
  runnerGroupName: string | null;
  readonly queuedAt: number;
  startedAt: number | null;
  completedAt: number | null;
  /** Set when the job's runner went offline: the job fails at this time. */
  lostAt: number | null;
}

export interface Run {
  readonly id: number;
  readonly repo: Repo;
  readonly runNumber: number;
  readonly name: string;
  readonly headSha: string;
  /** The jobs of the latest attempt (a re-run replaces a job by its new attempt's). */
  readonly jobIds: number[];
  /** 1, then one more for each re-run. */
  attempt: number;
  readonly createdAt: number;
  updatedAt: number;
}
