/**
 * What the end-to-end suites read from a controller's SQLite store after it stopped: runner records, the runner
 * events (every state change, with its reason) and the jobs, and what the suites derive from them: each runner's
 * history, and the exact replay of how many runner records of a scale set were live at once (invariant 1).
 */
import Database from 'better-sqlite3';

export interface StoreRunner {
  readonly name: string;
  readonly scale_set: string;
  readonly state: string;
}

export interface StoreEvent {
  readonly id: number;
  readonly scale_set: string | null;
  readonly runner: string | null;
  readonly event: string;
  readonly reason: string | null;
}

export interface StoreJob {
  readonly id: number;
  readonly status: string;
  readonly scale_set: string | null;
}

export interface StoreRecords {
  readonly runners: StoreRunner[];
  readonly events: StoreEvent[];
  readonly jobs: StoreJob[];
}

/** Reads the store (read-only; the controller must have stopped). */
export function readStore(path: string): StoreRecords {
  const db = new Database(path, { readonly: true });
  try {
    return {
      runners: db.prepare('SELECT name, scale_set, state FROM runners').all() as StoreRunner[],
      events: db
        .prepare("SELECT id, scale_set, runner, event, reason FROM events WHERE kind = 'runner' ORDER BY id")
        .all() as StoreEvent[],
      jobs: db.prepare('SELECT id, status, scale_set FROM jobs').all() as StoreJob[],
    };
  } finally {
    db.close();
  }
}

/** Each runner's events as `event: reason` lines, in order. */
export function runnerHistory(events: readonly StoreEvent[]): Map<string, string[]> {
  const history = new Map<string, string[]>();
  for (const e of events) {
    if (e.runner !== null)
      history.set(e.runner, [...(history.get(e.runner) ?? []), `${e.event}: ${e.reason}`]);
  }
  return history;
}

/**
 * Replays the runner events: a record counts from its first `requested` to `deleted` (a create GitHub refused for
 * its rate limit puts the same record back to `requested`, to wait for the budget). Returns the most records live
 * at once per scale set (what invariant 1 bounds by `max`) and how many are live at the end.
 */
export function replayLiveRunners(events: readonly StoreEvent[]): {
  readonly max: Map<string, number>;
  readonly end: Map<string, number>;
} {
  const live = new Map<string, number>();
  const max = new Map<string, number>();
  const counted = new Set<string>();
  for (const e of events) {
    if (e.scale_set === null) continue;
    const key = `${e.scale_set}/${e.runner ?? ''}`;
    if (e.event === 'requested') {
      if (e.runner !== null && counted.has(key)) continue;
      counted.add(key);
      live.set(e.scale_set, (live.get(e.scale_set) ?? 0) + 1);
    } else if (e.event === 'deleted') {
      counted.delete(key);
      live.set(e.scale_set, (live.get(e.scale_set) ?? 0) - 1);
    }
    max.set(e.scale_set, Math.max(max.get(e.scale_set) ?? 0, live.get(e.scale_set) ?? 0));
  }
  return { max, end: live };
}
