/**
 * Domain types shared by every layer. This file imports nothing at run time, so any folder may import types from
 * it (`import type`), including github/, providers/ and store/.
 */
import type { Scope } from './fleet-config.js';

export type { Scope };

/** Lifecycle of one runner of this fleet (docs/core.md, Runner states). */
export type RunnerState =
  | 'requested' // planned; intent recorded, nothing created yet
  | 'creating' // registration obtained or being obtained, instance being created
  | 'starting' // instance exists, runner not online yet
  | 'idle' // online, not busy
  | 'busy' // running a job
  | 'finished' // job done (ephemeral) or removed after idle timeout; instance being deleted
  | 'failed' // failed before taking a job; replaced with backoff
  | 'bootstrap-timeout' // did not come online within bootstrapTimeout
  | 'deleted'; // instance and registration gone (terminal)

export const RUNNER_STATES: readonly RunnerState[] = [
  'requested',
  'creating',
  'starting',
  'idle',
  'busy',
  'finished',
  'failed',
  'bootstrap-timeout',
  'deleted',
];

/** States that count as capacity for pending jobs. (`max` counts every runner not yet deleted: invariant 1 in docs/core.md.) */
export const ACTIVE_RUNNER_STATES: readonly RunnerState[] = [
  'requested',
  'creating',
  'starting',
  'idle',
  'busy',
];

export type JobStatus = 'queued' | 'in_progress' | 'completed';

/** A runner registration as GitHub reports it. */
export interface GitHubRunner {
  readonly id: number;
  readonly name: string;
  readonly os?: string;
  readonly status: 'online' | 'offline';
  readonly busy: boolean;
  readonly labels: readonly string[];
  readonly ephemeral?: boolean;
}
