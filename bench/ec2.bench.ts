/**
 * The ec2 provider against moto, counted at a proxy in front of it (test/support/aws-fault-proxy.ts: what moto
 * received from the controller, by AWS action, not what the controller believes it sent), with the GitHub
 * simulator at GitHub's own limits (5,000 requests an hour per installation, 180 runner registrations a minute) and
 * the EC2 bridge playing the machines (each instance's user data: the start script, the AWS CLI, the runner
 * emulator).
 *
 * 1. EC2 and SSM calls per runner over its whole life: a controller built by composeController in this process
 *    (the ec2 factory pointed at the proxy), three ephemeral JIT scale sets, one per launch path: CreateFleet from a
 *    launch template (spot over two instance types and two subnets), RunInstances from a launch template, and
 *    RunInstances from an AMI with the default user data. Jobs for all three; once every job is done and nothing is
 *    left in moto (no pending or running instance, no runner parameter) the runner calls (launch, PutParameter,
 *    TerminateInstances, DeleteParameter(s)) are divided by the instances launched. Calls made once per start
 *    (prepare) and per resync (DescribeInstances, the parameter GC's GetParametersByPath) are reported apart.
 * 2. DescribeInstances per resync with 1,000 instances of the fleet: 1,000 instances created directly in moto and
 *    tagged as the fleet's runners in four scale sets, a controller with those four ec2 scale sets, and five resyncs
 *    (reconciler.resync(): the GitHub runner list and every scale set's instance list), each timed and counted.
 *    Target: the calls are pages of 1,000 for the whole fleet, not one per runner or per scale set.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { CreateTagsCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import type { _InstanceType } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { composeController } from '../src/app/compose.js';
import type { Controller } from '../src/app/compose.js';
import { TAG_FLEET, TAG_RUNNER, TAG_SCALE_SET } from '../src/aws/tags.js';
import { loadConfig } from '../src/config/index.js';
import { createEc2World } from '../src/demo/ec2.js';
import type { DemoEc2World } from '../src/demo/fleet.js';
import { createEc2ProviderFactory } from '../src/providers/ec2/index.js';
import type { Ec2ProviderFactory } from '../src/providers/ec2/index.js';
import { renderEc2UserData } from '../src/providers/ec2/user-data.js';
import { startSimulator } from '../src/sim/github/index.js';
import type { Simulator } from '../src/sim/github/index.js';
import { startAwsFaultProxy } from '../test/support/aws-fault-proxy.js';
import type { AwsFaultProxy } from '../test/support/aws-fault-proxy.js';
import type { Ec2SetShape } from '../test/support/ec2-fleet.js';
import { EC2_REGION, ec2Census, startFleetBridge, writeEc2FleetConfig } from '../test/support/ec2-fleet.js';
import { MOTO_CREDENTIALS, startMoto } from '../test/support/moto.js';
import type { MotoServer } from '../test/support/moto.js';
import { waitFor } from './fleet-peers.js';
import type { BenchResult, Benchmark } from './harness.js';
import { GITHUB_DEFAULT_LIMITS } from './harness.js';

const JOBS_PER_SET = 20;
const CALLS_TARGET = 4;
const LISTED_INSTANCES = 1_000;
const LISTED_SETS = 4;
const RESYNCS = 5;
/** The provider's DescribeInstances page size (MaxResults). */
const PAGE_SIZE = 1_000;
/** Calls a runner's life makes; everything else is per start or per resync. */
const RUNNER_CALLS = [
  'RunInstances',
  'CreateFleet',
  'PutParameter',
  'TerminateInstances',
  'DeleteParameter',
  'DeleteParameters',
];

/** Calls of the run that are neither a runner's nor a list's nor the parameter GC's. */
function others(counts: Readonly<Record<string, number>>): Record<string, number> {
  const skip = new Set([...RUNNER_CALLS, 'DescribeInstances', 'GetParametersByPath']);
  return Object.fromEntries(Object.entries(counts).filter(([k]) => !skip.has(k)));
}

const quiet = () => new Writable({ write: (_c, _e, done) => done() });
const sum = (counts: Readonly<Record<string, number>>, keys: readonly string[]) =>
  keys.reduce((n, k) => n + (counts[k] ?? 0), 0);
const list = (counts: Readonly<Record<string, number>>) =>
  Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');

interface Peers {
  readonly moto: MotoServer;
  readonly proxy: AwsFaultProxy;
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly sim: Simulator;
  readonly dirs: string[];
}

/** The controller of `sets`, in this process, its ec2 factory calling moto through the proxy. */
async function controllerFor(
  peers: Peers,
  fleet: string,
  sets: readonly Ec2SetShape[],
  options: { resyncInterval: string; bootstrapTimeout: string },
): Promise<{ controller: Controller; factory: Ec2ProviderFactory; url: string }> {
  const files = writeEc2FleetConfig(peers.sim, {
    fleet,
    port: 0,
    endpoint: undefined,
    sets,
    resyncInterval: options.resyncInterval,
    bootstrapTimeout: options.bootstrapTimeout,
  });
  peers.dirs.push(files.dir);
  const loaded = loadConfig(files.configPath, { env: {} });
  if (!loaded.ok) throw new Error(`fleet.yaml: ${JSON.stringify(loaded.problems)}`);
  const factory = createEc2ProviderFactory({
    endpoint: peers.proxy.url,
    credentials: MOTO_CREDENTIALS,
    renderUserData: renderEc2UserData,
  });
  const controller = await composeController({
    config: loaded.config,
    logLevel: 'warn',
    logDestination: quiet(),
    providerFactories: { ec2: factory },
  });
  const url = await controller.start();
  return { controller, factory, url };
}

function lifeSets(world: DemoEc2World, prefix: string): Ec2SetShape[] {
  const template = { name: world.launchTemplates[prefix]! };
  const base = {
    scope: { org: 'octo-org' },
    minIdle: 0,
    max: 8,
    ephemeral: true,
    registration: 'jit',
  } as const;
  return [
    {
      ...base,
      name: 'fleet',
      labels: ['linux', 'fleet'],
      provider: {
        launchTemplate: template,
        instanceTypes: ['t3.micro', 't3a.micro'],
        subnetIds: world.subnetIds.slice(0, 2),
        capacity: 'spot',
      },
    },
    {
      ...base,
      name: 'template',
      labels: ['linux', 'template'],
      provider: { launchTemplate: template, instanceTypes: ['t3.micro'], subnetIds: [world.subnetIds[0]] },
    },
    {
      ...base,
      name: 'ami',
      labels: ['linux', 'ami'],
      provider: {
        imageId: world.imageId,
        instanceProfile: world.instanceProfile,
        instanceTypes: ['t3.micro'],
        subnetIds: [world.subnetIds[1]],
        securityGroupIds: [world.securityGroupId],
      },
    },
  ];
}

interface LifeResult {
  readonly runners: number;
  readonly runnerCalls: number;
  readonly counts: Record<string, number>;
  readonly setup: Record<string, number>;
  readonly listFetches: number;
  readonly githubCalls: number;
  readonly durationMs: number;
}

/** The AWS resources of one bench fleet in moto (launch templates, parameters under its prefix). */
async function fleetWorld(peers: Peers, fleet: string) {
  const prefix = `/runner-fleet/${fleet}`;
  const world = await createEc2World({
    ec2: peers.ec2,
    endpoint: peers.moto.url,
    region: EC2_REGION,
    fleet,
    prefixes: [prefix],
  });
  return { prefix, world };
}

async function runnerLives(peers: Peers, log: (line: string) => void): Promise<LifeResult> {
  const fleet = 'ec2bench';
  const { prefix, world } = await fleetWorld(peers, fleet);
  const sets = lifeSets(world, prefix);
  const { controller, factory, url } = await controllerFor(peers, fleet, sets, {
    resyncInterval: '10s',
    bootstrapTimeout: '180s',
  });
  const bridge = await startFleetBridge(peers.moto, fleet);
  try {
    const setup = { ...peers.proxy.counts };
    peers.proxy.resetCounts();
    const fetchesBefore = factory.stats.listFetches;
    const githubBefore = peers.sim.stats().apiCalls.total;
    peers.sim.setWebhook(`${url}/webhook`);
    const started = Date.now();
    const ids: number[] = [];
    for (let i = 0; i < JOBS_PER_SET; i++) {
      for (const set of sets) {
        const [job] = peers.sim.createJobs({
          owner: 'octo-org',
          repo: 'app',
          labels: ['self-hosted', ...set.labels],
          durationMs: 500,
        });
        ids.push(job!.id);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    log(`${ids.length} jobs queued over three scale sets; waiting for them and for the cleanup`);
    await waitFor(
      'every job completed',
      () => ids.every((id) => peers.sim.job(id)?.status === 'completed'),
      600_000,
      500,
      () => ({ done: ids.filter((id) => peers.sim.job(id)?.status === 'completed').length }),
    );
    let census = await ec2Census({ ec2: peers.ec2, ssm: peers.ssm }, fleet, [prefix]);
    await waitFor(
      'nothing of the fleet left in moto or the store',
      async () => {
        census = await ec2Census({ ec2: peers.ec2, ssm: peers.ssm }, fleet, [prefix]);
        return (
          census.liveIds.length === 0 &&
          census.parameters.length === 0 &&
          controller.store.runners().every((r) => r.state === 'deleted')
        );
      },
      240_000,
      500,
      () => ({ live: census.liveIds, parameters: census.parameters }),
    );
    await controller.reconciler.settled();
    const counts = { ...peers.proxy.counts };
    const failed = ids.filter((id) => peers.sim.job(id)?.conclusion !== 'success');
    if (failed.length > 0) throw new Error(`${failed.length} job(s) did not succeed`);
    return {
      runners: census.instances.length,
      runnerCalls: sum(counts, RUNNER_CALLS),
      counts,
      setup,
      listFetches: factory.stats.listFetches - fetchesBefore,
      githubCalls: peers.sim.stats().apiCalls.total - githubBefore,
      durationMs: Date.now() - started,
    };
  } finally {
    await controller.stop();
    await bridge.bridge.stop();
  }
}

/** 1,000 instances tagged as `fleet`'s runners in LISTED_SETS scale sets, created in moto directly (not proxied). */
async function createListedInstances(peers: Peers, world: DemoEc2World, fleet: string): Promise<void> {
  const batch = 100;
  let made = 0;
  for (let b = 0; b < LISTED_INSTANCES / batch; b++) {
    const set = `listed${b % LISTED_SETS}`;
    const reply = await peers.ec2.send(
      new RunInstancesCommand({
        ImageId: world.imageId,
        InstanceType: 't3.micro' as _InstanceType,
        MinCount: batch,
        MaxCount: batch,
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: TAG_FLEET, Value: fleet },
              { Key: TAG_SCALE_SET, Value: set },
            ],
          },
        ],
      }),
    );
    const ids = (reply.Instances ?? []).map((i) => i.InstanceId!);
    // Each its own runner name, as the provider names them.
    await Promise.all(
      ids.map((id, i) =>
        peers.ec2.send(
          new CreateTagsCommand({
            Resources: [id],
            Tags: [
              { Key: TAG_RUNNER, Value: `${set}-${String(b).padStart(2, '0')}${String(i).padStart(3, '0')}` },
            ],
          }),
        ),
      ),
    );
    made += ids.length;
  }
  if (made !== LISTED_INSTANCES) throw new Error(`created ${made} instances, not ${LISTED_INSTANCES}`);
}

interface ListResult {
  readonly callsPerResync: number;
  readonly pagesPerResync: number;
  readonly resyncMs: number[];
  readonly listed: number;
  readonly otherCalls: Record<string, number>;
}

async function largeFleetLists(peers: Peers, log: (line: string) => void): Promise<ListResult> {
  const fleet = 'ec2list';
  const { prefix, world } = await fleetWorld(peers, fleet);
  const created = Date.now();
  await createListedInstances(peers, world, fleet);
  log(`${LISTED_INSTANCES} instances created in moto in ${((Date.now() - created) / 1000).toFixed(1)} s`);
  const template = { name: world.launchTemplates[prefix]! };
  const sets: Ec2SetShape[] = Array.from({ length: LISTED_SETS }, (_, i) => ({
    name: `listed${i}`,
    scope: { org: 'octo-org' },
    labels: ['linux', `listed${i}`],
    minIdle: 0,
    max: 500,
    ephemeral: true,
    registration: 'jit',
    provider: { launchTemplate: template },
  }));
  // A long bootstrap timeout and resync interval: the instances are only listed, never removed as strays.
  const { controller, factory } = await controllerFor(peers, fleet, sets, {
    resyncInterval: '10m',
    bootstrapTimeout: '1h',
  });
  try {
    peers.proxy.resetCounts();
    const pagesBefore = factory.stats.describePages;
    const resyncMs: number[] = [];
    for (let i = 0; i < RESYNCS; i++) {
      // Past the provider's 500 ms reuse of a list: each resync makes its own.
      await new Promise((r) => setTimeout(r, 700));
      const t0 = performance.now();
      await controller.reconciler.resync();
      resyncMs.push(performance.now() - t0);
    }
    const counts = { ...peers.proxy.counts };
    const pages = factory.stats.describePages - pagesBefore;
    const listedNow = await Promise.all(
      sets.map((s) =>
        controller.providers.get(s.name)!.list({ fleet, scaleSet: s.name }, AbortSignal.timeout(60_000)),
      ),
    );
    const { DescribeInstances: describe = 0, ...otherCalls } = counts;
    return {
      callsPerResync: describe / RESYNCS,
      pagesPerResync: pages / RESYNCS,
      resyncMs,
      listed: listedNow.reduce((n, l) => n + l.length, 0),
      otherCalls,
    };
  } finally {
    await controller.stop();
  }
}

export const benchmark: Benchmark = {
  id: 'ec2',
  title: 'EC2 provider against moto: AWS calls per runner, DescribeInstances per resync with 1,000 instances',
  limits: GITHUB_DEFAULT_LIMITS,
  async run(log) {
    const moto = await startMoto();
    const proxy = await startAwsFaultProxy(moto.url);
    const base = { region: EC2_REGION, endpoint: moto.url, credentials: MOTO_CREDENTIALS };
    const ec2 = new EC2Client(base);
    const ssm = new SSMClient(base);
    // GitHub's limits: the simulator's defaults are github.com's.
    const sim = await startSimulator({ orgs: ['octo-org'] });
    const peers: Peers = {
      moto,
      proxy,
      ec2,
      ssm,
      sim,
      dirs: [mkdtempSync(path.join(os.tmpdir(), 'rf-ec2-bench-'))],
    };
    try {
      const life = await runnerLives(peers, log);
      const perRunner = life.runnerCalls / Math.max(1, life.runners);
      log(
        `${life.runners} runners in ${(life.durationMs / 1000).toFixed(0)} s: ${life.runnerCalls} runner calls ` +
          `(${perRunner.toFixed(2)} each); all calls: ${list(life.counts)}`,
      );
      const lists = await largeFleetLists(peers, log);
      const p50 = [...lists.resyncMs].sort((a, b) => a - b)[Math.floor(RESYNCS / 2)]!;
      log(
        `resyncs with ${lists.listed} instances listed: ${lists.callsPerResync} DescribeInstances each ` +
          `(${lists.pagesPerResync} page(s)), ${lists.resyncMs.map((ms) => ms.toFixed(0)).join(', ')} ms`,
      );
      const pages = Math.ceil(LISTED_INSTANCES / PAGE_SIZE);
      return [
        {
          name: 'ec2.aws-calls-per-runner',
          value: Number(perRunner.toFixed(2)),
          unit: 'calls',
          target: `<= ${CALLS_TARGET}`,
          pass: perRunner <= CALLS_TARGET && life.runners >= 3 * JOBS_PER_SET,
          notes:
            `${life.runnerCalls} EC2 and SSM calls moto received for the lives of ${life.runners} ephemeral JIT ` +
            `runners (${JOBS_PER_SET} jobs each on three scale sets: CreateFleet spot from a launch template, ` +
            `RunInstances from a launch template, RunInstances from an AMI): ${list(
              Object.fromEntries(RUNNER_CALLS.map((k) => [k, life.counts[k] ?? 0])),
            )}. Not per runner: DescribeInstances ${life.counts.DescribeInstances ?? 0} (${life.listFetches} ` +
            `fleet lists, one per resync or after a change, each one page), GetParametersByPath ` +
            `${life.counts.GetParametersByPath ?? 0} (parameter GC)${
              Object.keys(others(life.counts)).length > 0
                ? `, once per process: ${list(others(life.counts))} (the account of the instance ARNs)`
                : ''
            }; at start, before the first job: ${list(life.setup)}. ` +
            `GitHub: ${life.githubCalls} REST calls at the simulator's default (github.com) rate limits`,
        },
        {
          name: 'ec2.describe-instances-per-resync.1000-instances',
          value: lists.callsPerResync,
          unit: 'calls',
          target: `<= ${pages} (pages of ${PAGE_SIZE}, not runners or scale sets)`,
          pass: lists.callsPerResync <= pages && lists.listed === LISTED_INSTANCES,
          notes:
            `${LISTED_INSTANCES} instances tagged as the fleet's runners in ${LISTED_SETS} ec2 scale sets, created in ` +
            `moto directly; ${RESYNCS} controller resyncs (reconciler.resync(): the GitHub runner list and every ` +
            `scale set's instance list), ${lists.pagesPerResync} DescribeInstances page(s) read per resync; the ` +
            `providers listed ${lists.listed} instances afterwards; other AWS calls in those resyncs: ` +
            `${list(lists.otherCalls) || 'none'}`,
        },
        {
          name: 'ec2.resync.1000-instances.p50',
          value: Math.round(p50),
          unit: 'ms',
          notes: `each resync: ${lists.resyncMs.map((ms) => ms.toFixed(0)).join(', ')} ms, moto answering the list`,
        },
      ] satisfies BenchResult[];
    } finally {
      ec2.destroy();
      ssm.destroy();
      await sim.close().catch(() => undefined);
      await proxy.close();
      await moto.stop();
      for (const dir of peers.dirs) rmSync(dir, { recursive: true, force: true });
    }
  },
};
