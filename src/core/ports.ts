/**
 * The ports the core needs from the outside world. github/ implements GitHubPort; store/ implements WebhookSink.
 * Type-only: the core stays free of SDKs and can be driven by any implementation that speaks to a real peer.
 */
import type { Scope } from './fleet-config.js';
import type { GitHubRunner, JobStatus } from './types.js';

export interface JitConfigRequest {
  readonly name: string;
  /** Runner group name; the client resolves it to an id (cached). */
  readonly runnerGroup: string;
  /** Labels for the runner, without `self-hosted` (GitHub adds it). */
  readonly labels: readonly string[];
  readonly workFolder?: string;
  /** The scale set the runner is for (a `discovery: scale-set` scale set takes JIT configs from its runner scale
   *  set, not from the REST endpoint). */
  readonly scaleSet?: string;
}

export interface JitConfigResult {
  readonly runner: GitHubRunner;
  /** Secret: never log it. */
  readonly encodedJitConfig: string;
}

export interface RegistrationToken {
  /** Secret: never log it. */
  readonly token: string;
  /** ms epoch */
  readonly expiresAt: number;
}

export interface JobInfo {
  readonly id: number;
  readonly status: JobStatus;
  readonly conclusion: string | null;
  readonly runnerName: string | null;
  readonly labels: readonly string[];
}

/**
 * A runner list. `pages`: how many pages GitHub answered it in, when known. One page is a consistent snapshot; a list
 * read page by page is not (a runner removed from an earlier page shifts the rest, and one can be skipped).
 */
export type RunnerList = GitHubRunner[] & { readonly pages?: number };

export interface GitHubPort {
  /** 201 -> result. A 409 (name exists, e.g. after a retried call) resolves to the existing runner with
   *  encodedJitConfig '' : the caller must treat that runner as created but without a usable config. */
  generateJitConfig(scope: Scope, request: JitConfigRequest, signal?: AbortSignal): Promise<JitConfigResult>;
  /** Cached per scope until shortly before expiry: one token serves many runners. */
  registrationToken(scope: Scope, signal?: AbortSignal): Promise<RegistrationToken>;
  /** Every runner of the scope whose name starts with `namePrefix` (all pages). */
  listRunners(scope: Scope, namePrefix: string, signal?: AbortSignal): Promise<RunnerList>;
  /** null when GitHub answers 404. */
  getRunner(scope: Scope, runnerId: number, signal?: AbortSignal): Promise<GitHubRunner | null>;
  /** 404 is success. */
  deleteRunner(scope: Scope, runnerId: number, signal?: AbortSignal): Promise<void>;
  /** null when GitHub answers 404. */
  getJob(owner: string, repo: string, jobId: number, signal?: AbortSignal): Promise<JobInfo | null>;
  /**
   * Re-runs a job (and the jobs that need it) in a new attempt of its workflow run, where it is queued anew under a
   * new job id: 201. GitHub refuses while the run is still in progress (403 "... already running": a retryable error
   * with code `run-in-progress`); a job it does not know is 404.
   */
  rerunJob(owner: string, repo: string, jobId: number, signal?: AbortSignal): Promise<void>;
  /** Web URL runners register against in token mode (e.g. https://github.com/octo-org). */
  registrationUrl(scope: Scope): string;
}

/** A `workflow_job` webhook after signature verification and parsing. */
export interface WorkflowJobEvent {
  readonly deliveryId: string;
  readonly action: 'queued' | 'in_progress' | 'completed' | 'waiting';
  readonly installationId: number | null;
  readonly job: {
    readonly id: number;
    readonly runId: number;
    readonly owner: string;
    readonly repo: string;
    readonly labels: readonly string[];
    readonly status: string;
    readonly conclusion: string | null;
    readonly runnerId: number | null;
    readonly runnerName: string | null;
    /** ms epoch, from the payload's created_at / started_at / completed_at */
    readonly createdAt: number | null;
    readonly startedAt: number | null;
    readonly completedAt: number | null;
  };
}

export interface WebhookSink {
  /**
   * Persist the event durably (synchronously) before the HTTP reply. Returns duplicate=true when this delivery id,
   * or this (job id, action) pair, was already accepted; the event is then not applied again.
   */
  acceptWorkflowJob(event: WorkflowJobEvent): { readonly duplicate: boolean };
}
