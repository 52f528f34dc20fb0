/**
 * The README's test command: `npm test` (scripts/test.ts) checks every peer and says how each missing one gets
 * installed, with an estimate, before anything runs; a suite skipped for a missing peer is listed in the closing
 * summary with its reason and command; under CI=true the same suite fails; and the run's traces are detected.
 * The missing peers come from an empty peer cache (RUNNER_FLEET_CACHE) and a chromium path that does not exist.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { gitStatus, leftovers } from '../../scripts/test.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const emptyCache = mkdtempSync(path.join(tmpdir(), 'rf-empty-cache-'));
afterAll(() => rmSync(emptyCache, { recursive: true, force: true }));

function run(args: string[], env: NodeJS.ProcessEnv) {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, RUNNER_FLEET_CACHE: emptyCache, ...env };
  delete childEnv.RUNNER_FLEET_SKIP_LOG;
  delete childEnv.VITEST;
  delete childEnv.VITEST_WORKER_ID;
  delete childEnv.VITEST_POOL_ID;
  if (env.CI === undefined) delete childEnv.CI;
  const r = spawnSync(path.join(repo, 'node_modules/.bin', args[0] as string), args.slice(1), {
    cwd: repo,
    encoding: 'utf8',
    env: childEnv,
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('npm test', () => {
  it('names every missing peer, who needs it and the command that installs it, with an estimate; builds nothing when only checking', () => {
    const r = run(['tsx', 'scripts/test.ts', '--check-peers'], {
      RUNNER_FLEET_CHROMIUM: '/nonexistent/chromium',
    });
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain(
      `peers: to build into ${emptyCache} (kept there, keyed by version; once per machine):`,
    );
    expect(r.out).toMatch(/- kubernetes control plane \(kube-apiserver, .*\), for test\/kubernetes/);
    for (const peer of ['helm', 'pod-identity-webhook', 'aws-peers'])
      expect(r.out).toContain(`  - ${peer}, for `);
    expect(r.out).toMatch(
      /peers: scripts\/install-peers.sh builds them: at least \d+ min on 2 cores and about 8 GB/,
    );
    expect(r.out).toContain(
      '  - chromium (/nonexistent/chromium), for test/browser: sudo apt-get install -y chromium',
    );
    expect(readdirSync(emptyCache)).toEqual([]);
  }, 60_000);

  it('a skipped suite leaves no temporary directory behind', () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'rf-skip-tmp-'));
    try {
      const r = run(['vitest', 'run', 'test/kubernetes/doctor.test.ts', 'test/kubernetes/demo.test.ts'], {
        TMPDIR: tmp,
      });
      expect(r.code, r.out).toBe(0);
      expect(readdirSync(tmp).filter((e) => !/^tsx-\d+$/.test(e))).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);

  it('a suite skipped for a missing peer is in the closing summary with its reason and command; under CI=true it fails', () => {
    const skipped = run(['vitest', 'run', 'test/kubernetes/doctor.test.ts'], {});
    expect(skipped.code, skipped.out).toBe(0);
    const summary = skipped.out.slice(skipped.out.lastIndexOf(' SKIPPED '));
    expect(summary).toMatch(/^ SKIPPED 4 tests in 1 file \(under CI=true a missing peer fails instead\):/);
    expect(summary).toMatch(
      /test\/kubernetes\/doctor\.test\.ts \(4 tests\): \[doctor on kubernetes\] the Kubernetes test peers are not built \(kubernetes v[\d.]+, etcd v[\d.]+, kwok v[\d.]+\); run: scripts\/install-peers\.sh/,
    );

    const ci = run(['vitest', 'run', 'test/kubernetes/doctor.test.ts'], { CI: 'true' });
    expect(ci.code).not.toBe(0);
    expect(ci.out).toContain('Under CI=true a missing test peer is a failure.');
  }, 120_000);

  it('finds the traces a run leaves: a changed or new file in the tree, anything in its temporary directory', () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'rf-leftovers-'));
    try {
      expect(leftovers(' M README.md\n', ' M README.md\n', tmp)).toEqual([]);
      writeFileSync(path.join(tmp, 'key.pem'), 'x');
      // tsx's own compile cache is not a trace.
      mkdirSync(path.join(tmp, 'tsx-0'));
      expect(leftovers('', ' M docs/images/dashboard.png\n?? stray.txt\n', tmp)).toEqual([
        'changed in the tree: M docs/images/dashboard.png',
        'changed in the tree: ?? stray.txt',
        'left in the temporary directory: key.pem',
      ]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('reads the whole status of the tree: ignored directories by name, not every file in node_modules', () => {
    // Listed file by file, node_modules/ alone is over a megabyte: cut at a buffer's end, the listing after the run
    // differed from the one before and a clean run failed the tree check.
    const lines = gitStatus().split('\n').filter(Boolean);
    expect(lines.length).toBeLessThan(1_000);
    for (const l of lines) expect(l).toMatch(/^[ MADRCU?!]{2} \S/);
  });
});
