/**
 * The README's demo numbers are those of a real run: the region between the demo-run markers is exactly what
 * `npm run docs:readme` renders from docs/demo-run.json, which that command writes from `runner-fleet demo --json`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { END, README, START, STORED, renderRegion } from '../../scripts/gen-readme-demo.js';
import type { StoredRun } from '../../scripts/gen-readme-demo.js';

describe('README demo numbers', () => {
  const readme = readFileSync(README, 'utf8');
  const run = JSON.parse(readFileSync(STORED, 'utf8')) as StoredRun;

  it('are the stored run, rendered (run `npm run docs:readme` after changing the demo)', () => {
    const region = readme.slice(readme.indexOf(START), readme.indexOf(END) + END.length);
    expect(region).toBe(renderRegion(run));
  });

  it('come from a successful run of the built-in demo, and no other figure of it is written by hand', () => {
    expect(run.summary.ok).toBe(true);
    expect(run.summary.scaleSets.map((s) => s.name)).toEqual([
      'linux-process',
      'linux-cloud',
      'linux-listener',
      'app-persistent',
    ]);
    const outside = readme.slice(0, readme.indexOf(START)) + readme.slice(readme.indexOf(END));
    expect(outside).not.toMatch(/\d+\.\d+ (GitHub )?calls per job/);
  });
});
