/**
 * `npm run testenv -- <command>`: the test control plane by hand.
 *
 *   up [--nodes N]   build missing peers (long the first time), start, print the admin kubeconfig path last
 *   status           components, pids, /readyz; exit 0 when healthy, 1 when not, 3 when nothing is up
 *   down             stop everything and remove the run directory
 *   build            only build missing peers
 *
 * The run directory is $RUNNER_FLEET_TESTENV_DIR or <repo>/.testenv (gitignored). Progress goes to stderr, so
 * `export KUBECONFIG=$(npm run -s testenv -- up)` works.
 */
import path from 'node:path';
import { clusterHealth, readState, startCluster, stopCluster } from './cluster.js';
import { buildPeers, defaultRunDir, missingPeers } from './peers.js';

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function up(dir: string, args: string[]): Promise<number> {
  const i = args.indexOf('--nodes');
  const nodes = i >= 0 ? Number(args[i + 1]) : undefined;
  if (nodes !== undefined && (!Number.isInteger(nodes) || nodes < 1)) {
    progress('--nodes needs a positive integer');
    return 2;
  }
  const state = readState(dir);
  if (state) {
    const health = await clusterHealth(state);
    if (health.healthy) {
      progress(`already running at ${state.server} (run dir ${dir})`);
      console.log(state.kubeconfig);
      return 0;
    }
    // Left over from a crash or a failed start: clear it before starting afresh.
    progress(`found a stale control plane in ${dir}; stopping what is left of it`);
    await stopCluster(dir, { removeDir: true });
  }
  if (missingPeers().length > 0) {
    progress(`building ${missingPeers().join(', ')} (the first build takes a long time; progress below)`);
    await buildPeers(progress);
  }
  const started = await startCluster({ dir, ...(nodes === undefined ? {} : { nodes }), log: progress });
  progress(`server:     ${started.state.server}`);
  progress(`nodes:      ${started.state.nodes.join(', ')}`);
  progress(`logs:       ${path.join(dir, 'logs')}`);
  progress(`admin token file: ${started.state.adminTokenFile}`);
  progress('stop with: npm run testenv -- down');
  console.log(started.state.kubeconfig);
  return 0;
}

async function status(dir: string): Promise<number> {
  const state = readState(dir);
  if (!state) {
    console.log(`no control plane in ${dir} (start one with: npm run testenv -- up)`);
    return 3;
  }
  const health = await clusterHealth(state);
  console.log(`run dir:    ${dir}`);
  console.log(`server:     ${state.server}`);
  console.log(`kubeconfig: ${state.kubeconfig}`);
  console.log(
    `versions:   kubernetes ${state.versions.kubernetes}, etcd ${state.versions.etcd}, kwok ${state.versions.kwok}`,
  );
  console.log(`started:    ${state.startedAt}${state.ready ? '' : ' (start-up did not finish)'}`);
  for (const c of health.components) {
    console.log(
      `  ${c.name.padEnd(24)} pid ${String(c.pid).padEnd(8)} ${c.running ? 'running' : 'NOT RUNNING'}`,
    );
  }
  console.log(`/readyz:    ${health.readyz}`);
  console.log(health.healthy ? 'healthy' : 'NOT healthy');
  return health.healthy ? 0 : 1;
}

async function down(dir: string): Promise<number> {
  const stopped = await stopCluster(dir, { removeDir: true });
  console.log(stopped ? `stopped and removed ${dir}` : `nothing to stop in ${dir}`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const dir = defaultRunDir();
  switch (command) {
    case 'up':
      return up(dir, rest);
    case 'status':
      return status(dir);
    case 'down':
      return down(dir);
    case 'build':
      await buildPeers(progress);
      return 0;
    default:
      console.error('usage: npm run testenv -- up [--nodes N] | status | down | build');
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  console.error(`testenv: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}`);
  return 1;
});
