/**
 * The last minutes of each scale set, for the dashboard's charts: runner count and queue time, sampled at a fixed
 * interval into a bounded ring. Kept by the controller, not the page, so a page opened late still sees the past.
 */
import type { JobView, ReadModel } from '../server/read-model.js';
import { waitOf } from './snapshot.js';

export interface SetSample {
  /** Runners counting toward capacity (requested, creating, starting, idle, busy). */
  readonly runners: number;
  readonly busy: number;
  readonly queued: number;
  /**
   * Longest queue time seen in the interval, ms: the wait of jobs still queued, or of jobs that started since the
   * previous sample. 0 when no job waited.
   */
  readonly queueMs: number;
}

export interface HistoryPoint {
  /** ms epoch */
  readonly at: number;
  readonly sets: Readonly<Record<string, SetSample>>;
}

export interface HistoryView {
  readonly intervalMs: number;
  readonly windowMs: number;
  readonly points: readonly HistoryPoint[];
}

/** Recent completed jobs looked at per sample, to catch jobs that started and finished between two samples. */
const RECENT_COMPLETED = 500;

export class History {
  readonly #points: HistoryPoint[] = [];
  readonly #intervalMs: number;
  readonly #windowMs: number;
  #lastAt: number | null = null;

  constructor(options: { intervalMs: number; windowMs: number }) {
    this.#intervalMs = options.intervalMs;
    this.#windowMs = options.windowMs;
  }

  get capacity(): number {
    return Math.max(1, Math.ceil(this.#windowMs / this.#intervalMs));
  }

  /** Takes one sample from the read model and appends it; returns the new point. */
  async sample(readModel: ReadModel, now: number): Promise<HistoryPoint> {
    const since = this.#lastAt ?? now - this.#intervalMs;
    // Completed jobs recorded since the last sample (one interval earlier, for margin): a job that started in
    // this sample's window was recorded completed after it started. Reading every completed job each sample cost
    // time that grew with the jobs kept.
    const [sets, jobs] = await Promise.all([
      readModel.scaleSets(),
      readModel.jobs({ completedLimit: RECENT_COMPLETED, completedSince: since - this.#intervalMs }),
    ]);
    const waits = new Map<string, number>();
    const note = (j: JobView) => {
      if (j.scaleSet === null) return;
      waits.set(j.scaleSet, Math.max(waits.get(j.scaleSet) ?? 0, waitOf(j, now)));
    };
    for (const j of jobs) {
      if (j.status === 'queued') note(j);
      else if (j.startedAt !== null && j.startedAt > since && j.startedAt <= now) note(j);
    }
    const point: HistoryPoint = {
      at: now,
      sets: Object.fromEntries(
        sets.map((s) => [
          s.name,
          {
            runners: s.activeRunners,
            busy: Number(s.runners.busy ?? 0),
            queued: s.queuedJobs,
            queueMs: waits.get(s.name) ?? 0,
          },
        ]),
      ),
    };
    this.add(point);
    return point;
  }

  add(point: HistoryPoint): void {
    this.#lastAt = point.at;
    this.#points.push(point);
    const excess = this.#points.length - this.capacity;
    if (excess > 0) this.#points.splice(0, excess);
  }

  view(): HistoryView {
    return { intervalMs: this.#intervalMs, windowMs: this.#windowMs, points: [...this.#points] };
  }
}
