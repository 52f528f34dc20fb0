/**
 * `npm test`: the whole suite, as the README promises, on a fresh machine too.
 *
 *   1. peers: every real peer a suite needs is checked; what can be built without root (the Kubernetes control
 *      plane, helm, the pod identity webhook, moto: scripts/install-peers.sh, cached in
 *      ${RUNNER_FLEET_CACHE:-~/.cache/runner-fleet} keyed by version) is built, with an estimate first; what needs
 *      the system package manager is installed when running as root, otherwise the run stops naming the command.
 *   2. typecheck, lint, build, each saying what it does;
 *   3. vitest, with a temporary directory of its own and the closing summary of skipped suites
 *      (test/support/skip-reporter.ts);
 *   4. the tree is as it was: `git status --porcelain` unchanged and nothing left in the temporary directory.
 *
 * Usage: npm test [-- <vitest arguments>]
 *        tsx scripts/test.ts --check-peers   only step 1's check: list what is missing and how it gets installed
 *
 * RUNNER_FLEET_ALLOW_SKIPS=1 installs nothing and goes on without the missing peers (their suites are skipped and
 * listed at the end): the quick run of what can run here. Under CI=true a missing peer still fails.
 */
import { spawnSync } from 'node:child_process';
import type { SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from './testenv/peers.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name: string) => path.join(repo, 'node_modules', '.bin', name);

export interface Peer {
  readonly name: string;
  /** The suites that need it. */
  readonly for: string;
  readonly present: boolean;
  /** How it gets installed: by scripts/install-peers.sh (no root), or a command for the user. */
  readonly install:
    { readonly kind: 'install-peers' } | { readonly kind: 'system'; readonly command: string };
}

const quiet: SpawnSyncOptions = { cwd: repo, stdio: 'ignore', env: process.env };
const ok = (command: string, args: string[]) => spawnSync(command, args, quiet).status === 0;
const onPath = (command: string) => ok('sh', ['-c', `command -v ${command}`]);
const isRoot = process.getuid?.() === 0;

export function peers(): Peer[] {
  const installers = readdirSync(path.join(repo, 'scripts'))
    .filter((f) => /^install-.+\.sh$/.test(f) && f !== 'install-peers.sh')
    .sort();
  const chromium = process.env.RUNNER_FLEET_CHROMIUM ?? '/usr/bin/chromium';
  return [
    {
      name: 'kubernetes control plane (kube-apiserver, controller-manager, scheduler, etcd, kwok)',
      for: 'test/kubernetes',
      present: ok('bash', ['scripts/testenv/build-peers.sh', '--check']),
      install: { kind: 'install-peers' },
    },
    ...installers.map((f): Peer => ({
      name: f.replace(/^install-|\.sh$/g, ''),
      for: f === 'install-aws-peers.sh' ? 'test/aws, test/cli/aws-access' : 'test/kubernetes',
      present: ok('bash', [`scripts/${f}`, '--check']),
      install: { kind: 'install-peers' },
    })),
    {
      name: 'openssl',
      for: 'test/kubernetes (certificates)',
      present: onPath('openssl'),
      install: { kind: 'system', command: 'sudo apt-get install -y openssl' },
    },
    {
      name: `chromium (${chromium})`,
      for: 'test/browser',
      present: existsSync(chromium),
      install: { kind: 'system', command: 'sudo apt-get install -y chromium' },
    },
    {
      name: 'shellcheck',
      for: 'src/aws/start-script',
      present: onPath('shellcheck'),
      install: { kind: 'system', command: 'sudo apt-get install -y shellcheck' },
    },
    {
      name: 'a container runtime without an engine (root, unshare, chroot, ip)',
      for: 'test/image, test/kubernetes/helm-install, test/kubernetes/pod-identity-webhook',
      present:
        isRoot &&
        ok('/usr/bin/unshare', ['--mount', '--net', '--propagation', 'private', '/usr/bin/true']) &&
        existsSync('/usr/sbin/chroot') &&
        existsSync('/usr/sbin/ip'),
      install: { kind: 'system', command: 'sudo npm test (the suites start containers as root)' },
    },
  ];
}

/** What a cold build of the missing peers costs, from the last measured cold build (bench/results). */
/**
 * Disk the peer cache takes once everything is built: 7.9 GB measured (`du -sh ~/.cache/runner-fleet` after a cold
 * scripts/install-peers.sh), 6.9 GB of it Go's module and build caches, which `rm -rf ~/.cache/runner-fleet/go`
 * reclaims once the binaries exist.
 */
const PEER_CACHE_GB = 8;

/** What a cold build of the missing peers costs, from the last measured cold build (bench/results). */
export function estimate(): string {
  try {
    const stored = JSON.parse(readFileSync(path.join(repo, 'bench/results/testenv-build.json'), 'utf8')) as {
      machine: string;
      results: { name: string; value: number }[];
    };
    const total = stored.results.find((r) => r.name === 'testenv.build.total')?.value;
    if (total !== undefined)
      return (
        `at least ${Math.ceil(total)} min on 2 cores and about ${PEER_CACHE_GB} GB of disk\n` +
        `  (the control plane's measured cold build: ${total} min on ${stored.machine}, BENCHMARKS.md;\n` +
        '  helm and the pod identity webhook add a few minutes; more when other work shares the cores)'
      );
  } catch {
    // no measurement: say so
  }
  return `no measured build time yet (many minutes on 2 cores), and about ${PEER_CACHE_GB} GB of disk`;
}

function step(title: string): number {
  console.log(`\n== ${title}`);
  return Date.now();
}
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(0)} s`;

/** Returns false when a peer is missing and cannot be installed here (the message names the command). */
function ensurePeers(checkOnly: boolean): boolean {
  const started = step('peers: checking the real peers the suites run against');
  let list = peers();
  const buildable = list.filter((p) => !p.present && p.install.kind === 'install-peers');
  const system = list.filter((p) => !p.present && p.install.kind === 'system');
  if (buildable.length === 0 && system.length === 0) {
    console.log(`peers: all ${list.length} present (${seconds(started)})`);
    return true;
  }
  if (buildable.length > 0) {
    console.log(`peers: to build into ${cacheDir()} (kept there, keyed by version; once per machine):`);
    for (const p of buildable) console.log(`  - ${p.name}, for ${p.for}`);
    console.log(`peers: scripts/install-peers.sh builds them: ${estimate()}`);
  }
  const aptable = system.filter((p) => p.install.kind === 'system' && p.install.command.includes('apt-get'));
  if (system.length > 0) {
    console.log('peers: missing from the system:');
    for (const p of system)
      if (p.install.kind === 'system') console.log(`  - ${p.name}, for ${p.for}: ${p.install.command}`);
  }
  if (checkOnly) return false;
  const allowSkips = process.env.RUNNER_FLEET_ALLOW_SKIPS === '1' && process.env.CI !== 'true';
  if (allowSkips) {
    console.log(
      'peers: RUNNER_FLEET_ALLOW_SKIPS=1: installing nothing; their suites are skipped and listed at the end',
    );
    return true;
  }

  if (buildable.length > 0) {
    const t = step('peers: scripts/install-peers.sh (progress below)');
    const r = spawnSync('bash', ['scripts/install-peers.sh'], {
      cwd: repo,
      stdio: 'inherit',
      env: process.env,
    });
    if (r.status !== 0) {
      console.error(
        `peers: scripts/install-peers.sh failed after ${seconds(t)}; its output above says which peer`,
      );
      return false;
    }
    console.log(`peers: built in ${seconds(t)}`);
  }
  if (isRoot && aptable.length > 0 && onPath('apt-get')) {
    const packages = aptable.map(
      (p) => /apt-get install -y (\S+)/.exec((p.install as { command: string }).command)?.[1],
    );
    const t = step(`peers: apt-get install ${packages.join(' ')} (a few minutes for chromium)`);
    const r = spawnSync(
      'sh',
      [
        '-c',
        `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${packages.join(' ')}`,
      ],
      { cwd: repo, stdio: 'inherit', env: process.env },
    );
    if (r.status !== 0) console.error(`peers: apt-get failed after ${seconds(t)}`);
  }
  list = peers();
  const still = list.filter((p) => !p.present);
  if (still.length === 0) {
    console.log(`peers: all ${list.length} present (${seconds(started)})`);
    return true;
  }
  const how = still.map(
    (p) =>
      `  - ${p.name}, for ${p.for}: ${p.install.kind === 'system' ? p.install.command : 'scripts/install-peers.sh'}`,
  );
  console.error(
    [
      'peers: cannot run the whole suite here; install these first:',
      ...how,
      'or `RUNNER_FLEET_ALLOW_SKIPS=1 npm test` to run without them (their suites are listed at the end).',
    ].join('\n'),
  );
  return false;
}

function run(title: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): boolean {
  const t = step(title);
  const r = spawnSync(command, args, { cwd: repo, stdio: 'inherit', env });
  const passed = r.status === 0;
  console.log(
    `== ${title.split(':')[0]}: ${passed ? 'ok' : `FAILED (exit ${r.status ?? r.signal})`} (${seconds(t)})`,
  );
  return passed;
}

/**
 * `git <args>` line by line. Its whole output or an error: a listing cut at spawnSync's default 1 MB buffer would
 * compare as a change.
 */
function gitLines(args: string[]): string[] {
  const r = spawnSync('git', args, { cwd: repo, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.error || r.status !== 0)
    throw new Error(`git ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout.split('\n');
}

/** Tracked, untracked and ignored files (a stray store file is ignored by .gitignore but still a trace). */
export const gitStatus = () =>
  gitLines(['status', '--porcelain', '--untracked-files=all', '--ignored=matching'])
    // Where the build and tests are meant to write (dist/, the browser test's screenshot in test-output/), and
    // node_modules/, where the tools keep their caches (vitest's results of the last run in node_modules/.vite).
    // Git quotes a path with spaces or other special characters: "node_modules/...".
    .filter((l) => !/^!! "?(test-output|dist|dist-check|node_modules)\//.test(l))
    .join('\n');

/** The checks after vitest: the tree as it was, and the run's temporary directory empty. */
export function leftovers(before: string, after: string, tmp: string): string[] {
  const problems: string[] = [];
  const was = new Set(before.split('\n').filter(Boolean));
  const changed = after.split('\n').filter((l) => l && !was.has(l));
  const gone = [...was].filter((l) => !after.split('\n').includes(l));
  for (const l of [...changed, ...gone]) problems.push(`changed in the tree: ${l.trim()}`);
  // tsx keeps its compile cache in $TMPDIR/tsx-<uid>: a tool's cache, not a trace of a test.
  if (existsSync(tmp))
    for (const entry of readdirSync(tmp))
      if (!/^tsx-\d+$/.test(entry)) problems.push(`left in the temporary directory: ${entry}`);
  return problems;
}

function main(argv: string[]): number {
  const started = Date.now();
  if (argv[0] === '--check-peers') return ensurePeers(true) ? 0 : 1;
  if (!ensurePeers(false)) return 1;
  if (
    !run('typecheck: tsc --noEmit over src, test, bench and scripts (about 30 s)', bin('tsc'), [
      '-p',
      'tsconfig.json',
      '--noEmit',
    ])
  )
    return 1;
  if (!run('lint: eslint (about 1 min)', bin('eslint'), ['.'])) return 1;
  if (!run('format: prettier --check (about 10 s)', bin('prettier'), ['--check', '--log-level', 'warn', '.']))
    return 1;
  if (!run('build: dist/ for the CLI tests', process.execPath, ['scripts/build.mjs'])) return 1;

  const before = gitStatus();
  // Every temporary file of the run goes here: what is left at the end was not cleaned up.
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'rf-test-'));
  const passed = run(
    'vitest: every suite (the long step: many minutes on 2 cores)',
    bin('vitest'),
    ['run', ...argv],
    {
      ...process.env,
      TMPDIR: tmp,
    },
  );
  const t = step('tree: git status unchanged, no temporary files left');
  // The control plane the Kubernetes suites shared is stopped by its watchdog once vitest has exited (it polls every
  // 2 s, then stops each component): give it that long before its run directory counts as left behind.
  const shared = () =>
    existsSync(tmp) && readdirSync(tmp).some((e) => e.startsWith('runner-fleet-testenv-run-'));
  if (shared())
    console.log('tree: waiting for the shared test control plane to be stopped by its watchdog (<= 60 s)');
  for (let waited = 0; shared() && waited < 60; waited++) spawnSync('sleep', ['1']);
  const problems = leftovers(before, gitStatus(), tmp);
  rmSync(tmp, { recursive: true, force: true });
  if (problems.length > 0) {
    console.error(
      [
        'tree: the tests left traces (removed now; fix the test that made them):',
        ...problems.map((p) => `  - ${p}`),
      ].join('\n'),
    );
  } else console.log(`tree: clean (${seconds(t)})`);
  console.log(`\nnpm test: ${passed && problems.length === 0 ? 'passed' : 'FAILED'} in ${seconds(started)}`);
  return passed && problems.length === 0 ? 0 : 1;
}

// Run as the `npm test` script; imported (by its test), it only exports.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  process.exitCode = main(process.argv.slice(2));
