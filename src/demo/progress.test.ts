import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProgressRenderer, pacingText, renderBlock, renderLine } from './progress.js';
import type { ProgressFrame } from './progress.js';

function sink() {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer, _e, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
    text: () => chunks.join(''),
  };
}

const frame = (elapsedMs: number, phase: ProgressFrame['phase'] = 'workload', done = 0): ProgressFrame => ({
  phase,
  elapsedMs,
  jobs: { total: 10, submitted: 6, queued: 2, running: 1, done, unroutable: 1 },
  sets: [{ name: 'linux-cloud', provider: 'sim', max: 4, starting: 1, idle: 0, busy: 1, ending: 0 }],
});

describe('progress', () => {
  it('plain output: one line per interval, and on every phase change', () => {
    const out = sink();
    const p = new ProgressRenderer({ stream: out.stream, tty: false, lineIntervalMs: 1000 });
    p.update(frame(0));
    p.update(frame(500));
    p.update(frame(1000));
    p.update(frame(1200, 'draining'));
    const lines = out.text().trimEnd().split('\n');
    // Three updates shown, each a line for the jobs and one for the scale set.
    expect(lines).toHaveLength(6);
    expect(lines.slice(0, 2).join('\n')).toBe(renderLine(frame(0)));
    expect(lines[4]).toContain('draining');
    expect(out.text()).not.toContain('\u001b[');
  });

  it('plain output fits 100 columns and says what each number is, with long names and large numbers', () => {
    const big: ProgressFrame = {
      phase: 'draining',
      elapsedMs: 3_725_000,
      jobs: { total: 10_000, submitted: 10_000, queued: 1234, running: 5678, done: 3088, unroutable: 12 },
      sets: [
        { name: 'linux-cloud', provider: 'sim', max: 60, starting: 60, idle: 0, busy: 0, ending: 0 },
        {
          name: 'x'.repeat(63),
          provider: 'sim',
          max: 9999,
          starting: 999,
          idle: 999,
          busy: 9999,
          ending: 999,
        },
      ],
    };
    const lines = renderLine(big).split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(100);
    expect(lines[0]).toBe(
      '[ 1h02m] draining: jobs 10000/10000 queued, 1234 waiting, 5678 running, 3088 done, 12 unroutable',
    );
    expect(lines[1]).toMatch(/^ +linux-cloud +runners: 0 busy, 0 idle, 60 starting, 0 ending \(max 60\)$/);
    expect(lines[2]).toMatch(/\.\.\.$/);
    // The frame of the demo's built-in fleet in full: nothing clipped.
    const demo = renderLine({
      ...big,
      elapsedMs: 40_000,
      jobs: { total: 300, submitted: 300, queued: 86, running: 0, done: 150, unroutable: 1 },
      sets: ['linux-process', 'linux-cloud', 'app-persistent'].map((name) => ({
        name,
        provider: 'sim',
        max: 60,
        starting: 60,
        idle: 10,
        busy: 40,
        ending: 12,
      })),
    });
    for (const line of demo.split('\n')) expect(line).not.toMatch(/\.\.\.$/);
  });

  it('terminal output: one block redrawn in place', () => {
    const out = sink();
    const p = new ProgressRenderer({ stream: out.stream, tty: true });
    p.update(frame(0));
    p.update(frame(1000, 'workload', 3));
    const text = out.text();
    expect(text).toContain('\u001b[2K');
    // The second draw moves up over the 3 lines of the first.
    expect(text).toContain('\u001b[3A');
    expect(text).toContain('3/10 done');
    expect(text).toContain('linux-cloud');
  });

  it("says when runners wait for GitHub's rate budget, how long and why, in under 100 columns", () => {
    const paced: ProgressFrame = {
      ...frame(5000),
      pacing: { waiting: 1234, oldestWaitMs: 4_800_000, pausedForMs: null, perMinute: 180 },
    };
    const line = pacingText(paced.pacing)!;
    expect(line).toBe("  1234 runners wait for GitHub's rate budget (180 creates/min), oldest 1h20m");
    const refused = pacingText({
      waiting: 99_999,
      oldestWaitMs: 59_999,
      pausedForMs: 3_599_000,
      perMinute: 100_000,
    })!;
    expect(refused).toContain('GitHub refused a create, retry in 59m59s');
    for (const l of [line, refused]) expect(l.length).toBeLessThan(100);
    expect(renderBlock(paced)).toContain(line);
    expect(pacingText({ waiting: 0, oldestWaitMs: null, pausedForMs: null, perMinute: 180 })).toBeNull();
    expect(renderBlock(frame(0)).some((l) => l.includes('rate budget'))).toBe(false);
    const out = sink();
    new ProgressRenderer({ stream: out.stream, tty: false }).update(paced);
    expect(out.text().split('\n')[1]).toBe(line);
  });
});
