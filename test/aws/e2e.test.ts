/**
 * End to end on EC2: `runner-fleet start` as a child process (the ec2 kind set up through its module, as for any
 * user, with moto's credentials in its environment and `--aws-endpoint` moto), the GitHub simulator, moto, and the
 * EC2 bridge running each instance's user data (the start script, the AWS CLI, the runner emulator). Two scale
 * sets: ephemeral JIT runners on spot instances launched with CreateFleet from a launch template over two instance
 * types and two subnets, and persistent token-mode runners launched with RunInstances from the AMI with the
 * module's default user data. 50 jobs; the controller is killed with SIGKILL in the middle of the burst and
 * restarted on the same store.
 *
 * Asserted: every job completes successfully on a runner of its scale set; no scale set ever has more than `max`
 * instances (moto) or runners (the simulator, the controller's API, the exact replay of the store's history); no job
 * gets two runners (the JIT registrations the simulator created: each ran a job or is accounted for by a create the
 * kill interrupted); no runner fails, the instances reporting their runners' exit codes; nothing is left (no
 * registration, no pending or running instance, no runner parameter); no secret in any log (controller, simulator,
 * every machine's output) nor in any instance's tags or user data.
 *
 * Needs `npm run build` and the AWS test peers (scripts/install-aws-peers.sh).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeInstanceAttributeCommand, EC2Client } from '@aws-sdk/client-ec2';
import type { Instance } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG_EXIT_CODE, TAG_SCALE_SET } from '../../src/aws/tags.js';
import type { ScaleSetView } from '../../src/core/read-models.js';
import { isRunnerOf } from '../../src/core/names.js';
import { createEc2World } from '../../src/demo/ec2.js';
import type { DemoEc2World } from '../../src/demo/fleet.js';
import { ControllerProcess } from '../e2e/controller-process.js';
import type { E2eSimulator } from '../e2e/harness.js';
import {
  MaxTracker,
  finished,
  freePort,
  jitRegistrations,
  liveRunners,
  runCleanup,
  runnersThatRan,
  sampleApi,
  startE2eSimulator,
  until,
} from '../e2e/harness.js';
import { countByKind, findSecrets, simulatorSecrets } from '../e2e/secrets.js';
import type { StoreRecords } from '../e2e/store-records.js';
import { readStore, replayLiveRunners, runnerHistory } from '../e2e/store-records.js';
import type { CreatedJob } from '../e2e/workload.js';
import { buildWorkload, playWorkload } from '../e2e/workload.js';
import type { Ec2Census, Ec2FleetFiles, Ec2SetShape, FleetBridge } from '../support/ec2-fleet.js';
import {
  EC2_REGION,
  controllerAwsEnv,
  ec2Census,
  startFleetBridge,
  writeEc2FleetConfig,
} from '../support/ec2-fleet.js';
import { MOTO_CREDENTIALS, requireAwsPeers, startMoto } from '../support/moto.js';
import type { MotoServer } from '../support/moto.js';

const FLEET = 'ec2-e2e';
const PREFIX = `/runner-fleet/${FLEET}`;
const SPOT_JOBS = 35;
const PERSIST_JOBS = 15;

function fleetSets(world: DemoEc2World): Ec2SetShape[] {
  const template = { name: world.launchTemplates[PREFIX]! };
  return [
    {
      name: 'spot',
      scope: { org: 'octo-org' },
      labels: ['linux', 'x64', 'spot'],
      max: 8,
      minIdle: 0,
      ephemeral: true,
      registration: 'jit',
      provider: {
        launchTemplate: template,
        instanceTypes: ['t3.micro', 't3a.micro'],
        subnetIds: world.subnetIds.slice(0, 2),
        capacity: 'spot',
      },
    },
    {
      name: 'persist',
      scope: { repo: 'octo-org/app' },
      labels: ['linux', 'persistent'],
      max: 3,
      minIdle: 0,
      ephemeral: false,
      registration: 'token',
      provider: {
        imageId: world.imageId,
        instanceProfile: world.instanceProfile,
        securityGroupIds: [world.securityGroupId],
        instanceTypes: ['t3.micro'],
        subnetIds: [world.subnetIds[0]],
      },
    },
  ];
}

/**
 * stderr without the AWS SDK's notice that its next versions need Node 22 (a process warning printed once on Node 20,
 * from its `Warning: NodeVersionSupportWarning` line to the `--trace-warnings` hint).
 */
function withoutSdkNodeNotice(text: string): string[] {
  const out: string[] = [];
  let inNotice = false;
  for (const line of text.split('\n')) {
    if (line.includes('NodeVersionSupportWarning')) inNotice = true;
    if (!inNotice && line.trim() !== '') out.push(line);
    if (line.includes('--trace-warnings')) inNotice = false;
  }
  return out;
}

interface Run {
  e2e: E2eSimulator;
  files: Ec2FleetFiles;
  controller: ControllerProcess;
  bridge: FleetBridge;
  jobs: CreatedJob[];
  tracker: MaxTracker;
  killedWith: { completed: number; creating: number };
  left: Ec2Census;
  store: StoreRecords;
  /** Every instance's tags and user data as moto holds them. */
  launchRecords: string;
}

let run: Run | undefined;
let moto: MotoServer | undefined;
const cleanup: (() => Promise<void>)[] = [];
let keepOnFailure: (() => string) | undefined;

const peers = requireAwsPeers('aws/e2e');

beforeAll(async () => {
  if (!peers) return;
  try {
    await ec2Run();
  } catch (error) {
    const dir = keepOnFailure?.();
    if (dir !== undefined) console.error(`ec2 e2e run failed; logs and store kept in ${dir}`);
    throw error;
  }
}, 420_000);

async function ec2Run(): Promise<void> {
  moto = await startMoto();
  cleanup.push(() => moto!.stop());
  const base = { region: EC2_REGION, endpoint: moto.url, credentials: MOTO_CREDENTIALS };
  const ec2 = new EC2Client(base);
  const ssm = new SSMClient(base);
  cleanup.push(async () => (ec2.destroy(), ssm.destroy()));
  const world = await createEc2World({
    ec2,
    endpoint: moto.url,
    region: EC2_REGION,
    fleet: FLEET,
    prefixes: [PREFIX],
  });
  const e2e = await startE2eSimulator();
  cleanup.push(() => e2e.sim.close());
  const { sim } = e2e;
  const port = await freePort();
  const files = writeEc2FleetConfig(sim, { fleet: FLEET, port, endpoint: undefined, sets: fleetSets(world) });
  cleanup.push(async () => {
    if (run !== undefined) rmSync(files.dir, { recursive: true, force: true });
  });
  const bridge = await startFleetBridge(moto, FLEET, { tmpDir: files.dir });
  cleanup.unshift(() => bridge.bridge.stop());
  // As an operator would run it against moto: --aws-endpoint, and credentials in the environment.
  const controller = new ControllerProcess(files.configPath, port, {
    args: ['--aws-endpoint', moto.url],
    env: controllerAwsEnv(),
  });
  cleanup.unshift(() => controller.stop());
  keepOnFailure = () => {
    writeFileSync(join(files.dir, 'controller-stdout.log'), controller.stdout.text());
    writeFileSync(join(files.dir, 'controller-stderr.log'), controller.stderr.text());
    writeFileSync(join(files.dir, 'simulator.log'), e2e.logs.text());
    writeFileSync(
      join(files.dir, 'machines.log'),
      [...bridge.outputs()].map(([id, out]) => `==== ${id}\n${out}`).join('\n'),
    );
    return files.dir;
  };
  sim.setWebhook(`${controller.url}/webhook`);
  await controller.start(120_000);

  // Samples: instances in moto, registrations in the simulator, runners in the controller's API, per scale set.
  const tracker = new MaxTracker();
  let sampling = true;
  const samplers = [
    (async () => {
      while (sampling) {
        const census = await ec2Census({ ec2 }, FLEET).catch(() => undefined);
        if (census !== undefined) {
          tracker.samples++;
          for (const set of files.sets) tracker.see(`instances:${set.name}`, census.live.get(set.name) ?? 0);
        }
        const runners = sim.runners();
        for (const set of files.sets) {
          tracker.see(`sim-runners:${set.name}`, runners.filter((r) => isRunnerOf(set.name, r.name)).length);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })(),
    (async () => {
      while (sampling) {
        const body = await controller.get<{ scaleSets: ScaleSetView[] }>('/api/v1/scale-sets');
        sampleApi(tracker, body?.scaleSets ?? []);
        await new Promise((r) => setTimeout(r, 200));
      }
    })(),
  ];
  const stopSampling = async () => {
    sampling = false;
    await Promise.all(samplers);
  };
  cleanup.unshift(stopSampling);

  const workload = buildWorkload({
    seed: 20_260_315,
    burst: 30,
    batch: 4,
    sets: [
      {
        scaleSet: 'spot',
        jobs: SPOT_JOBS,
        repos: ['octo-org/app', 'octo-org/web'],
        labelVariants: [['self-hosted', 'spot'], ['linux', 'x64', 'spot'], ['Spot']],
        durationMs: [300, 1500],
      },
      {
        scaleSet: 'persist',
        jobs: PERSIST_JOBS,
        repos: ['octo-org/app'],
        labelVariants: [
          ['self-hosted', 'persistent'],
          ['Linux', 'persistent'],
        ],
        durationMs: [200, 800],
      },
    ],
  });
  const playing = playWorkload(sim, workload, { intervalMs: 400 });
  // The kill falls in the middle of the burst: some jobs done, runners being created.
  await until(() => sim.jobs('completed').length >= 5, 180_000, '5 jobs completed before the kill');
  const runners = await controller.get<{ runners: { state: string }[] }>('/api/v1/runners');
  const killedWith = {
    completed: sim.jobs('completed').length,
    creating:
      runners?.runners.filter((r) => ['requested', 'creating', 'starting'].includes(r.state)).length ?? -1,
  };
  await controller.kill();
  // Down long enough that deliveries fail (GitHub does not retry them) while the machines go on.
  const failed = sim.stats().webhooks.failed;
  await until(() => sim.stats().webhooks.failed >= failed + 2, 60_000, 'webhooks to fail while down');
  await controller.start(120_000);
  const jobs = await playing;
  expect(jobs).toHaveLength(SPOT_JOBS + PERSIST_JOBS);
  await until(
    () => jobs.every((j) => sim.job(j.id)?.status === 'completed'),
    300_000,
    `all ${jobs.length} jobs completed`,
    () => ({
      queued: sim.jobs('queued').map((j) => j.id),
      inProgress: sim.jobs('in_progress').length,
      bridge: bridge.bridge.stats,
    }),
  );
  // Nothing left: no registration of the fleet, no pending or running instance, no runner parameter.
  let left = await ec2Census({ ec2, ssm }, FLEET, [PREFIX]);
  const registrations = () => sim.runners().filter((r) => files.sets.some((s) => isRunnerOf(s.name, r.name)));
  await until(
    async () => {
      left = await ec2Census({ ec2, ssm }, FLEET, [PREFIX]);
      return left.liveIds.length === 0 && left.parameters.length === 0 && registrations().length === 0;
    },
    180_000,
    'no instance, runner parameter or registration of the fleet left',
    () => ({ live: left.liveIds, parameters: left.parameters, runners: registrations().map((r) => r.name) }),
  );
  await until(
    async () => {
      const body = await controller.get<{ scaleSets: ScaleSetView[] }>('/api/v1/scale-sets');
      return body !== null && body.scaleSets.every((s) => liveRunners(s) === 0);
    },
    60_000,
    'the store to agree: no live runner record',
  );
  await stopSampling();
  await controller.stop();

  const launchRecords: string[] = [];
  for (const instance of left.instances) {
    const userData = await ec2.send(
      new DescribeInstanceAttributeCommand({ InstanceId: instance.InstanceId!, Attribute: 'userData' }),
    );
    const text = Buffer.from(userData.UserData?.Value ?? '', 'base64').toString('utf8');
    launchRecords.push(JSON.stringify(instance.Tags ?? []), text);
  }
  run = {
    e2e,
    files,
    controller,
    bridge,
    jobs,
    tracker,
    killedWith,
    left,
    store: readStore(files.storePath),
    launchRecords: launchRecords.join('\n'),
  };
  console.info(
    `ec2 e2e run: ${JSON.stringify({
      killedWith,
      instances: left.instances.length,
      samples: tracker.samples,
      max: Object.fromEntries(tracker.max),
      bridge: bridge.bridge.stats,
      apiCalls: sim.stats().apiCalls.total,
      exitTags: countBy(left.instances.map((i) => `${scaleSetOfInstance(i)}: ${exitTagOf(i) ?? 'none'}`)),
      runnerEvents: countBy(
        run.store.events.map((e) => `${e.event}: ${(e.reason ?? '').replace(/\d{6,}/g, 'N')}`),
      ),
    })}`,
  );
}

afterAll(() => runCleanup(cleanup), 120_000);

const need = (): Run => finished(run, 'the ec2 end-to-end run');

function countBy(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
function scaleSetOfInstance(i: Instance): string | undefined {
  return i.Tags?.find((t) => t.Key === TAG_SCALE_SET)?.Value;
}

function exitTagOf(i: Instance): string | undefined {
  return i.Tags?.find((t) => t.Key === TAG_EXIT_CODE)?.Value;
}

describe.skipIf(!peers)(
  'ec2 end to end: spot JIT and persistent token runners, one kill -9 mid-burst',
  () => {
    it('killed the controller in the middle of the run and restarted it on the same store', () => {
      const { controller, killedWith, jobs } = need();
      expect(controller.kills).toBe(1);
      expect(controller.starts).toBe(2);
      expect(killedWith.completed).toBeGreaterThan(0);
      expect(killedWith.completed).toBeLessThan(jobs.length);
    });

    it('completes every job successfully on a runner of its scale set; the store agrees', () => {
      const { e2e, jobs, store } = need();
      const stored = new Map(store.jobs.map((j) => [j.id, j]));
      const wrong: string[] = [];
      for (const job of jobs) {
        const sim = e2e.sim.job(job.id)!;
        if (sim.status !== 'completed' || sim.conclusion !== 'success') {
          wrong.push(`${job.id}: ${sim.status} ${sim.conclusion}`);
        } else if (sim.runnerName === null || !isRunnerOf(job.scaleSet, sim.runnerName)) {
          wrong.push(`${job.id} [${job.labels.join(',')}] ran on ${sim.runnerName}`);
        }
        const s = stored.get(job.id);
        if (s === undefined || s.status !== 'completed' || s.scale_set !== job.scaleSet) {
          wrong.push(`${job.id}: store has ${JSON.stringify(s)}`);
        }
      }
      expect(wrong).toEqual([]);
    });

    it('ran every runner on an EC2 instance launched the way its scale set says', () => {
      const { left, bridge, files } = need();
      const spot = left.instances.filter((i) => scaleSetOfInstance(i) === 'spot');
      const persist = left.instances.filter((i) => scaleSetOfInstance(i) === 'persist');
      expect(spot.length).toBeGreaterThanOrEqual(SPOT_JOBS);
      expect(spot.every((i) => i.InstanceLifecycle === 'spot')).toBe(true);
      expect(spot.every((i) => ['t3.micro', 't3a.micro'].includes(i.InstanceType ?? ''))).toBe(true);
      expect(persist.length).toBeGreaterThanOrEqual(1);
      expect(persist.every((i) => i.InstanceLifecycle !== 'spot' && i.InstanceType === 't3.micro')).toBe(
        true,
      );
      expect(left.instances.every((i) => i.State?.Name === 'terminated')).toBe(true);
      // The bridge started a machine for every instance it saw running, each from the template's user data.
      expect(bridge.bridge.stats.started).toBeGreaterThanOrEqual(SPOT_JOBS + 1);
      expect(bridge.events.filter((e) => e.type === 'no-user-data')).toEqual([]);
      expect(files.sets.map((s) => s.name)).toEqual(['spot', 'persist']);
    });

    it('never has more than max instances or runners of a scale set', () => {
      const { tracker, files, store } = need();
      expect(tracker.samples).toBeGreaterThan(20);
      const { max: replayMax, end } = replayLiveRunners(store.events);
      for (const set of files.sets) {
        const seen = {
          instances: tracker.get(`instances:${set.name}`),
          simRunners: tracker.get(`sim-runners:${set.name}`),
          api: tracker.get(`api:${set.name}`),
          storeReplay: replayMax.get(set.name) ?? 0,
        };
        for (const [where, n] of Object.entries(seen)) {
          expect(n, `${set.name}: most seen in ${where}`).toBeLessThanOrEqual(set.max);
        }
        expect(end.get(set.name) ?? 0, `${set.name}: live records at the end`).toBe(0);
      }
      // The bound was reached, so it was tested.
      expect(replayMax.get('spot')).toBe(8);
    });

    it('gives no job two runners: every JIT registration ran a job or was lost to the kill', () => {
      const { e2e, jobs, store } = need();
      const created = jitRegistrations(e2e.sim, ['spot', 'persist']);
      const ran = runnersThatRan(e2e.sim, ['spot', 'persist']);
      const history = runnerHistory(store.events);
      const names = created.get('spot')!;
      expect(new Set(names).size, 'registration names are unique').toBe(names.length);
      expect(ran.get('spot')!.size).toBe(SPOT_JOBS);
      const idle = names.filter((n) => !ran.get('spot')!.has(n));
      const unexplained = idle.filter((n) => !(history.get(n) ?? []).some((h) => /interrupted/.test(h)));
      expect(unexplained.map((n) => `${n}: ${(history.get(n) ?? []).join(' | ')}`)).toEqual([]);
      // A kill interrupts at most the creates in flight: at most max of them.
      expect(idle.length).toBeLessThanOrEqual(8);
      // Token mode makes no JIT configs; its persistent runners ran several jobs each.
      expect(created.get('persist')).toEqual([]);
      const persistJobs = jobs.filter((j) => j.scaleSet === 'persist').length;
      expect(ran.get('persist')!.size).toBeGreaterThanOrEqual(1);
      expect(ran.get('persist')!.size).toBeLessThanOrEqual(persistJobs);
    });

    it('reads every runner’s outcome from its instance: no runner failed, no instance taken for failed', () => {
      const { left, store } = need();
      // The start script tags its instance with the runner's exit code before it shuts down; an instance the
      // controller terminated first (its job reported done) has none. A spot runner that tagged exited 0.
      const spotTags = left.instances
        .filter((i) => scaleSetOfInstance(i) === 'spot')
        .map(exitTagOf)
        .filter((tag) => tag !== undefined);
      expect(spotTags.filter((tag) => tag !== '0')).toEqual([]);
      // No runner record failed or timed out, and none ended because its instance looked failed (before instances
      // reported their exit code, every instance that shut itself down looked terminated through the EC2 API).
      // Except a create the kill interrupted after its launch and before its parameter was written: the instance
      // never gets its secret (the JIT config died with the process), and the bootstrap timeout reclaims it
      // (docs/ec2-provider.md, "A kill between launch and parameter").
      const history = runnerHistory(store.events);
      const cutByKill = (runner: string | null) =>
        runner !== null &&
        (history.get(runner) ?? []).some((h) => h.includes('instance found after an interrupted create'));
      const bad = store.events.filter(
        (e) =>
          e.event === 'failed' ||
          (e.event === 'bootstrap-timeout' && !cutByKill(e.runner)) ||
          /instance failed|through the EC2 API/.test(e.reason ?? ''),
      );
      expect(bad.map((e) => `${e.runner}: ${e.event}: ${e.reason}`)).toEqual([]);
    });

    it('leaves nothing behind: no registration, no pending or running instance, no runner parameter', () => {
      const { left, store } = need();
      expect(left.liveIds).toEqual([]);
      expect(left.parameters).toEqual([]);
      expect(store.runners.filter((r) => r.state !== 'deleted')).toEqual([]);
    });

    it('logs no secret and puts none in an instance’s tags or user data', () => {
      const { e2e, controller, bridge, launchRecords } = need();
      const secrets = simulatorSecrets(e2e.sim);
      const kinds = countByKind(secrets);
      expect(kinds['JIT config']).toBeGreaterThanOrEqual(SPOT_JOBS);
      expect(kinds['registration token']).toBeGreaterThanOrEqual(1);
      expect(controller.stdout.lines.length).toBeGreaterThan(500);
      // Nothing on stderr but the SDK's notice about Node 22.
      expect(withoutSdkNodeNotice(controller.stderr.text())).toEqual([]);
      const machines = [...bridge.outputs().values()].join('\n');
      expect(machines).toMatch(/runner-fleet-start: /);
      const hits = findSecrets(
        {
          'controller stdout': controller.stdout.text(),
          'controller stderr': controller.stderr.text(),
          simulator: e2e.logs.text(),
          machines,
          'instance tags and user data': launchRecords,
        },
        secrets,
      );
      expect(hits).toEqual([]);
    });
  },
);
