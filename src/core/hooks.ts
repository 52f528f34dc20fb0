/**
 * Metrics hooks: optional callbacks the telemetry module plugs in. Every hook is called synchronously and must not
 * throw (a throwing hook is caught and logged, never allowed to break a reconcile).
 */
import type { RunnerState } from './types.js';

export type JobEventKind = 'queued' | 'in_progress' | 'completed' | 'unroutable';

export interface ReconcilerHooks {
  /** A runner changed state (every transition, with its reason). */
  onRunnerState?(event: {
    readonly scaleSet: string;
    readonly runner: string;
    readonly from: RunnerState | null;
    readonly to: RunnerState;
    readonly reason: string | null;
  }): void;
  /** Runner counts of a scale set after each pass (for a gauge). Deleted runners are not counted. */
  onRunnerCounts?(scaleSet: string, counts: Readonly<Record<RunnerState, number>>): void;
  /** A job event was accepted (webhook or status check). queueMs: queued to in_progress, on in_progress. */
  onJobEvent?(event: {
    readonly scaleSet: string | null;
    readonly event: JobEventKind;
    readonly jobId: number;
    readonly queueMs?: number;
  }): void;
  /** One planning pass of one scale set. */
  onReconcile?(event: {
    readonly scaleSet: string;
    readonly durationMs: number;
    readonly actions: number;
  }): void;
  /** One provider call. */
  onProviderOperation?(event: {
    readonly provider: string;
    readonly scaleSet: string;
    readonly op: 'create' | 'delete' | 'list';
    readonly result: 'ok' | 'error';
    readonly durationMs: number;
  }): void;
  /** One full resync (GitHub runner lists and provider lists). */
  onResync?(event: { readonly durationMs: number; readonly ok: boolean }): void;
}

/** Runs a hook call, swallowing (and reporting) anything it throws. */
export function safeHook(call: () => void, onError: (err: unknown) => void): void {
  try {
    call();
  } catch (err) {
    onError(err);
  }
}
