/**
 * The closing summary of skipped tests: after vitest's own summary, every skipped test file with its suite, the
 * reason and the command that makes it run (from reportSkip, test/support/skips.ts). A test skipped without a
 * recorded reason is listed as such: no skip is silent.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { SKIP_LOG_ENV } from './skips.js';
import type { SkipRecord } from './skips.js';

export default class SkipReporter implements Reporter {
  #root = process.cwd();
  #ownDir: string | undefined;

  onInit(vitest: { config: { root: string } }): void {
    this.#root = vitest.config.root;
    if (!process.env[SKIP_LOG_ENV]) {
      this.#ownDir = mkdtempSync(path.join(tmpdir(), 'rf-skips-'));
      process.env[SKIP_LOG_ENV] = path.join(this.#ownDir, 'skips.jsonl');
    }
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const log = process.env[SKIP_LOG_ENV] as string;
    let records: SkipRecord[] = [];
    try {
      records = readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as SkipRecord);
    } catch {
      // nothing skipped by a missing peer
    }
    if (this.#ownDir) rmSync(this.#ownDir, { recursive: true, force: true });
    const lines = summarize(testModules, records, this.#root);
    if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
  }
}

/** The summary's lines: empty when nothing was skipped. */
export function summarize(
  testModules: ReadonlyArray<TestModule>,
  records: readonly SkipRecord[],
  root: string,
): string[] {
  const skippedByFile = new Map<string, number>();
  for (const module of testModules) {
    let skipped = 0;
    for (const test of module.children.allTests()) if (test.result().state === 'skipped') skipped++;
    if (skipped > 0) skippedByFile.set(module.moduleId, skipped);
  }
  if (skippedByFile.size === 0) return [];
  const total = [...skippedByFile.values()].reduce((a, b) => a + b, 0);
  const lines = [
    '',
    ` SKIPPED ${total} test${total === 1 ? '' : 's'} in ${skippedByFile.size} file${skippedByFile.size === 1 ? '' : 's'}` +
      ' (under CI=true a missing peer fails instead):',
  ];
  for (const [file, count] of [...skippedByFile].sort(([a], [b]) => a.localeCompare(b))) {
    const why = records.filter((r) => r.file === file);
    const where = `${path.relative(root, file)} (${count} test${count === 1 ? '' : 's'})`;
    if (why.length === 0) {
      lines.push(`   ${where}: skipped in the file itself (it.skip/skipIf), no peer reason recorded`);
      continue;
    }
    for (const r of why) lines.push(`   ${where}: [${r.suite}] ${r.reason}${r.fix ? `; run: ${r.fix}` : ''}`);
  }
  return lines;
}
