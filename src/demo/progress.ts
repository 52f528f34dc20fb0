/**
 * Live progress of a demo run: on a terminal one block redrawn in place; otherwise (a pipe, a CI log) a few plain
 * lines every few seconds (the jobs, then one per scale set), never wider than 100 columns. Only ever written to the
 * stream it is given (stderr when the summary goes to stdout as JSON).
 */
import { humanDuration } from '../lib/format.js';

export interface SetProgress {
  readonly name: string;
  readonly provider: string;
  readonly max: number;
  /** requested + creating + starting */
  readonly starting: number;
  readonly idle: number;
  readonly busy: number;
  /** finished + failed + bootstrap-timeout: on their way out */
  readonly ending: number;
}

export interface ProgressFrame {
  readonly phase: 'starting' | 'workload' | 'draining' | 'done';
  readonly elapsedMs: number;
  readonly jobs: {
    readonly total: number;
    readonly submitted: number;
    readonly queued: number;
    readonly running: number;
    readonly done: number;
    readonly unroutable: number;
  };
  readonly sets: readonly SetProgress[];
  /** Runner creates waiting for GitHub's rate budget, over every scale set; absent or 0 waiting: nothing shown. */
  readonly pacing?: PacingProgress;
}

export interface PacingProgress {
  readonly waiting: number;
  /** How long the oldest waiting create has waited, ms. */
  readonly oldestWaitMs: number | null;
  /** ms still to wait after GitHub refused a create (the whole installation waits), or null. */
  readonly pausedForMs: number | null;
  /** The budget: creates a minute per installation. */
  readonly perMinute: number;
}

/** Why runners wait, in one line under 100 columns; null when none waits for GitHub's budget. */
export function pacingText(p: PacingProgress | undefined): string | null {
  if (p === undefined || p.waiting === 0) return null;
  const who = `${p.waiting} runner${p.waiting === 1 ? '' : 's'}`;
  const oldest = p.oldestWaitMs === null ? '' : `, oldest ${humanDuration(p.oldestWaitMs)}`;
  if (p.pausedForMs !== null) {
    return `  ${who} wait: GitHub refused a create, retry in ${humanDuration(p.pausedForMs)}${oldest}`;
  }
  return `  ${who} wait for GitHub's rate budget (${p.perMinute} creates/min)${oldest}`;
}

export interface ProgressOptions {
  readonly stream: NodeJS.WritableStream;
  /** Redraw in place (a terminal). */
  readonly tty: boolean;
  /** Plain mode: at most one line per this many ms (phase changes always print). Default 2 s. */
  readonly lineIntervalMs?: number;
  /** Terminal width for the block; default 100. */
  readonly columns?: number;
}

const ESC = '\u001b[';

function bar(value: number, total: number, width: number): string {
  if (total <= 0) return ' '.repeat(width);
  const filled = Math.max(0, Math.min(width, Math.round((value / total) * width)));
  return '#'.repeat(filled) + '.'.repeat(width - filled);
}

function setLine(s: SetProgress): string {
  return `${s.busy} busy, ${s.idle} idle, ${s.starting} starting, ${s.ending} ending (max ${s.max})`;
}

/** The block shown on a terminal. */
export function renderBlock(frame: ProgressFrame, columns = 100): string[] {
  const j = frame.jobs;
  const width = Math.max(10, Math.min(40, columns - 60));
  const nameWidth = Math.max(...frame.sets.map((s) => s.name.length), 9);
  const lines = [
    `runner-fleet demo  ${frame.phase.padEnd(8)}  ${humanDuration(frame.elapsedMs).padStart(7)}`,
    `  jobs  [${bar(j.done, j.total, width)}] ${j.done}/${j.total} done, ${j.running} running, ` +
      `${j.queued} queued` +
      (j.unroutable > 0 ? `, ${j.unroutable} unroutable` : '') +
      (j.submitted < j.total ? ` (${j.total - j.submitted} still to queue)` : ''),
  ];
  for (const s of frame.sets) {
    const active = s.starting + s.idle + s.busy;
    lines.push(`  ${s.name.padEnd(nameWidth)} [${bar(active, s.max, width)}] ${setLine(s)}`);
  }
  const pacing = pacingText(frame.pacing);
  if (pacing !== null) lines.push(pacing);
  return lines.map((l) => (l.length > columns ? l.slice(0, columns - 1) : l));
}

/** Widest line of plain output: fits a 100-column terminal or CI log without wrapping. */
export const LINE_COLUMNS = 100;

const clip = (line: string, columns: number) =>
  line.length > columns ? `${line.slice(0, columns - 3)}...` : line;

/**
 * Plain output, what a log shows: a line for the jobs, then one indented line per scale set with its runners,
 * each at most `columns` wide.
 */
export function renderLine(frame: ProgressFrame, columns = LINE_COLUMNS): string {
  const j = frame.jobs;
  const stamp = `[${humanDuration(frame.elapsedMs).padStart(6)}]`;
  const jobs =
    `${stamp} ${frame.phase}: jobs ${j.submitted}/${j.total} queued, ` +
    `${j.queued} waiting, ${j.running} running, ${j.done} done` +
    (j.unroutable > 0 ? `, ${j.unroutable} unroutable` : '');
  const indent = ' '.repeat(stamp.length + 1);
  // Names line up, but a very long one does not push every other line past the width.
  const nameWidth = Math.min(24, Math.max(0, ...frame.sets.map((s) => s.name.length)));
  const sets = frame.sets.map((s) => `${indent}${s.name.padEnd(nameWidth)}  runners: ${setLine(s)}`);
  return [jobs, ...sets].map((l) => clip(l, columns)).join('\n');
}

export class ProgressRenderer {
  readonly #o: ProgressOptions;
  #drawn = 0;
  #lastLineAt = Number.NEGATIVE_INFINITY;
  #lastPhase: ProgressFrame['phase'] | null = null;

  constructor(options: ProgressOptions) {
    this.#o = options;
  }

  /** Shows a frame: redraws the block, or prints a line when the interval passed or the phase changed. */
  update(frame: ProgressFrame): void {
    if (this.#o.tty) {
      // A pseudo-terminal may report 0 columns: then assume a common width.
      const columns = this.#o.columns !== undefined && this.#o.columns >= 40 ? this.#o.columns : 100;
      const lines = renderBlock(frame, columns);
      let out = this.#drawn > 0 ? `${ESC}${this.#drawn}A` : '';
      for (const line of lines) out += `${ESC}2K${line}\n`;
      // A block that shrank leaves old lines below: clear them.
      for (let i = lines.length; i < this.#drawn; i++) out += `${ESC}2K\n`;
      const extra = Math.max(0, this.#drawn - lines.length);
      if (extra > 0) out += `${ESC}${extra}A`;
      this.#drawn = lines.length;
      this.#o.stream.write(out);
      return;
    }
    const phaseChanged = frame.phase !== this.#lastPhase;
    if (!phaseChanged && frame.elapsedMs - this.#lastLineAt < (this.#o.lineIntervalMs ?? 2_000)) return;
    this.#lastLineAt = frame.elapsedMs;
    this.#lastPhase = frame.phase;
    // The jobs line, then what they wait for (GitHub's rate budget), then a line per scale set.
    const [jobs, ...sets] = renderLine(frame).split('\n');
    const pacing = pacingText(frame.pacing);
    this.#o.stream.write(`${[jobs, ...(pacing !== null ? [pacing] : []), ...sets].join('\n')}\n`);
  }

  /** A message above the block (or as its own line). */
  note(text: string): void {
    if (this.#o.tty && this.#drawn > 0) {
      // Print above the block: move up, write, and let the next update redraw below.
      this.#o.stream.write(`${ESC}${this.#drawn}A${ESC}0J${text}\n`);
      this.#drawn = 0;
      return;
    }
    this.#o.stream.write(`${text}\n`);
  }

  /** Leaves the last block on screen; the next output starts below it. */
  finish(): void {
    this.#drawn = 0;
  }
}
