/**
 * Schema migrations: a numbered list applied in order, each in its own transaction, recorded in SQLite's
 * `user_version`. Append only: never edit a shipped migration, add the next one.
 */
import type { Database } from 'better-sqlite3';

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'deliveries, jobs, runners, events, scale set backoff',
    sql: `
      -- One row per accepted webhook delivery. A second delivery with the same id, or for the same (job, action),
      -- is a duplicate and is not applied again.
      CREATE TABLE deliveries (
        delivery_id TEXT PRIMARY KEY,
        job_id INTEGER NOT NULL,
        action TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        UNIQUE (job_id, action)
      );
      CREATE INDEX deliveries_received_at ON deliveries (received_at);

      CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL,
        owner TEXT NOT NULL,
        repo TEXT NOT NULL,
        labels TEXT NOT NULL, -- JSON array
        status TEXT NOT NULL CHECK (status IN ('queued', 'in_progress', 'completed')),
        conclusion TEXT,
        scale_set TEXT, -- NULL: unroutable
        runner_name TEXT,
        queued_at INTEGER NOT NULL,
        started_at INTEGER,
        completed_at INTEGER,
        checked_at INTEGER,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX jobs_open ON jobs (status) WHERE status <> 'completed';
      CREATE INDEX jobs_runner_name ON jobs (runner_name) WHERE runner_name IS NOT NULL;
      CREATE INDEX jobs_updated_at ON jobs (updated_at);

      -- One row per runner this fleet planned. The row exists before any call to GitHub or a provider.
      CREATE TABLE runners (
        name TEXT PRIMARY KEY,
        scale_set TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        github_id INTEGER,
        created_at INTEGER NOT NULL,
        state_changed_at INTEGER NOT NULL,
        instance_deleted_at INTEGER,
        registration_deleted_at INTEGER
      );
      CREATE INDEX runners_live ON runners (scale_set) WHERE state <> 'deleted';
      CREATE INDEX runners_state_changed_at ON runners (state_changed_at);

      -- Runner state history and job events, for the dashboard and for post-mortems.
      CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('runner', 'job', 'registration', 'instance')),
        scale_set TEXT,
        runner TEXT,
        job_id INTEGER,
        event TEXT NOT NULL,
        reason TEXT
      );
      CREATE INDEX events_at ON events (at);
      CREATE INDEX events_runner ON events (runner) WHERE runner IS NOT NULL;

      CREATE TABLE scale_sets (
        name TEXT PRIMARY KEY,
        failures INTEGER NOT NULL DEFAULT 0,
        backoff_until INTEGER NOT NULL DEFAULT 0,
        last_failure TEXT,
        last_failure_at INTEGER
      );
    `,
  },
];

export class MigrationError extends Error {
  readonly code = 'store-migration';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

/** Brings the database to the latest version; returns the versions applied. */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.at(-1)?.version ?? 0;
  if (current > latest) {
    throw new MigrationError(
      `database schema version ${current} is newer than this runner-fleet (${latest}); upgrade runner-fleet`,
    );
  }
  const applied: number[] = [];
  for (const m of migrations) {
    if (m.version <= current) continue;
    const step = db.transaction(() => {
      db.exec(m.sql);
      // user_version takes no bound parameters; the value is an integer from our own list.
      db.pragma(`user_version = ${Math.trunc(m.version)}`);
    });
    try {
      step.immediate();
    } catch (cause) {
      throw new MigrationError(`migration ${m.version} (${m.description}) failed`, { cause });
    }
    applied.push(m.version);
  }
  return applied;
}
