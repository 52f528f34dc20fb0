/**
 * The EC2 bridge (src/sim/ec2-bridge) against moto, the GitHub simulator, bash and the runner emulator: instances
 * launched in moto with runner-fleet's user data become runners and end as EC2 instances do; a spot interruption;
 * an instance terminated by someone else (the controller) loses its machine; the shutdown behaviour is respected;
 * stop() leaves no sandbox behind.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TAG_EXIT_CODE, TAG_FLEET, TAG_RUNNER } from '../../src/aws/tags.js';
import { renderUserData, userDataBase64 } from '../../src/aws/user-data.js';
import { createEc2ProviderFactory, ec2ProviderSchema } from '../../src/providers/ec2/index.js';
import type { Ec2ProviderFactory } from '../../src/providers/ec2/index.js';
import type { Instance } from '../../src/providers/provider.js';
import { startEc2Bridge } from '../../src/sim/ec2-bridge/index.js';
import type { Ec2Bridge, Ec2BridgeEvent, Ec2BridgeOptions } from '../../src/sim/ec2-bridge/index.js';
import { startSimulator } from '../../src/sim/github/index.js';
import type { Simulator } from '../../src/sim/github/index.js';
import {
  ORG,
  REGION,
  awsClients,
  emulatorCommand,
  instanceState,
  jitRegistration,
  launchInstance,
  putRunnerParameter,
  waitFor,
} from '../support/ec2-machines.js';
import { MOTO_CREDENTIALS, awsPeersBin, requireAwsPeers, startMoto } from '../support/moto.js';
import type { MotoServer } from '../support/moto.js';
import { observedContext } from './ec2-fixtures.js';

const PREFIX = '/runner-fleet/bridge';

/** Processes whose command line names a path under `dir`: what is left of a machine. */
function processesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (argv.includes(dir)) out.push(`${entry}: ${argv}`);
    } catch {
      // gone
    }
  }
  return out;
}

describe.skipIf(!requireAwsPeers('aws/ec2-bridge'))('EC2 bridge', () => {
  let moto: MotoServer;
  let sim: Simulator;
  let ec2: EC2Client;
  let ssm: SSMClient;
  let runnerCommand: string[];
  let sandboxes: string;
  let providers: Ec2ProviderFactory;
  const bridges: Ec2Bridge[] = [];

  beforeAll(async () => {
    [moto, sim] = await Promise.all([
      startMoto(),
      // A vanished runner is noticed within seconds and its job failed soon after.
      startSimulator({ orgs: [ORG], runnerOfflineAfterMs: 2000, offlineJobTimeoutMs: 1000 }),
    ]);
    ({ ec2, ssm } = awsClients(moto));
    runnerCommand = emulatorCommand();
    sandboxes = mkdtempSync(join(tmpdir(), 'rf-ec2-bridge-'));
    providers = createEc2ProviderFactory({
      endpoint: moto.url,
      credentials: MOTO_CREDENTIALS,
      timings: { reuseMs: 0 },
    });
  });

  afterEach(async () => {
    await Promise.all(bridges.splice(0).map((b) => b.stop()));
  });

  afterAll(async () => {
    await providers?.close();
    await Promise.all([moto?.stop(), sim?.close()]);
    if (sandboxes) rmSync(sandboxes, { recursive: true, force: true });
  });

  async function bridge(fleet: string, extra: Partial<Ec2BridgeOptions> = {}) {
    const events: Ec2BridgeEvent[] = [];
    const b = await startEc2Bridge({
      endpoint: moto.url,
      region: REGION,
      credentials: MOTO_CREDENTIALS,
      fleet,
      runnerCommand,
      path: [awsPeersBin()!],
      pollMs: 200,
      stopGraceMs: 3000,
      tmpDir: sandboxes,
      onEvent: (event) => events.push(event),
      ...extra,
    });
    bridges.push(b);
    return { bridge: b, events };
  }

  const ended = (events: Ec2BridgeEvent[], instanceId: string) =>
    events.find(
      (e): e is Extract<Ec2BridgeEvent, { type: 'ended' }> =>
        e.type === 'ended' && e.instanceId === instanceId,
    );
  const runner = (name: string) => sim.runners().find((r) => r.name === name);

  /** The instance's runner-fleet:exit-code tag, as the start script left it. */
  async function exitTag(id: string): Promise<string | undefined> {
    const reply = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return reply.Reservations?.[0]?.Instances?.[0]?.Tags?.find((t) => t.Key === TAG_EXIT_CODE)?.Value;
  }

  /** What the ec2 provider lists for the runner: the controller's view of how it ended. */
  async function providerView(fleet: string, name: string): Promise<Instance | undefined> {
    const block = ec2ProviderSchema.parse({
      kind: 'ec2',
      region: REGION,
      imageId: 'ami-0123456789abcdef0',
      instanceProfile: 'runner-fleet-runner',
      instanceTypes: ['t3.micro'],
    });
    const provider = providers.create(block, observedContext(fleet, 'linux').context);
    try {
      return (await provider.list({ fleet }, AbortSignal.timeout(30_000))).find((i) => i.name === name);
    } finally {
      await provider.close?.();
    }
  }

  /** Launches an instance with the default user data and writes its JIT registration; resolves once online. */
  async function onlineInstance(b: Ec2Bridge, fleet: string, name: string): Promise<string> {
    const id = await launchInstance(ec2, {
      fleet,
      runner: name,
      userData: renderUserData({ ssmPrefix: PREFIX }),
    });
    const jitConfig = await jitRegistration(sim, name, `l-${name}`);
    await putRunnerParameter(ssm, PREFIX, id, { mode: 'jit', jitConfig }, { fleet, runner: name });
    await waitFor(
      `runner ${name} online`,
      () => runner(name)?.status === 'online',
      90_000,
      () => b.output(id),
    );
    return id;
  }

  it(
    'runs the user data of a launched instance: runner online, job done, instance terminated',
    { timeout: 180_000 },
    async () => {
      const { bridge: b, events } = await bridge('life-fleet');
      const id = await onlineInstance(b, 'life-fleet', 'life-1');
      expect(events.find((e) => e.type === 'started' && e.instanceId === id)).toBeDefined();
      expect(b.instances()).toEqual([{ instanceId: id, phase: 'running' }]);
      const [job] = sim.createJobs({ owner: ORG, repo: 'app', labels: ['l-life-1'], durationMs: 200 });
      expect(
        await waitFor(
          'ended',
          () => ended(events, id),
          90_000,
          () => b.output(id),
        ),
      ).toEqual({
        type: 'ended',
        instanceId: id,
        reason: 'shutdown',
        action: 'terminated',
      });
      expect(sim.job(job!.id)).toMatchObject({ conclusion: 'success', runnerName: 'life-1' });
      expect(await instanceState(ec2, id)).toBe('terminated');
      // moto shows a user-initiated end; the start script's tag says how the runner ended.
      expect(await exitTag(id)).toBe('0');
      expect(b.output(id)).toContain('tagged the instance runner-fleet:exit-code=0');
      expect(await providerView('life-fleet', 'life-1')).toMatchObject({ state: 'succeeded' });
      expect(b.stats).toMatchObject({
        started: 1,
        shutdowns: 1,
        terminated: 1,
        stoppedExternally: 0,
        errors: 0,
      });
      expect(b.instances()).toEqual([{ instanceId: id, phase: 'ended', reason: 'shutdown', exitCode: 0 }]);
      // The machine's disk (it held the runner's credentials) is gone.
      expect(readdirSync(sandboxes).filter((d) => d.includes(id))).toEqual([]);
    },
  );

  it(
    'a failing runner: the instance tags its exit code, and the provider sees failed with a message',
    { timeout: 180_000 },
    async () => {
      const fleet = 'failing-fleet';
      const { bridge: b, events } = await bridge(fleet);
      const id = await launchInstance(ec2, {
        fleet,
        runner: 'fail-1',
        userData: renderUserData({ ssmPrefix: PREFIX }),
      });
      // Its registration is gone before it starts, as when GitHub removed it: the runner exits 1.
      const jitConfig = await jitRegistration(sim, 'fail-1', 'l-fail-1');
      await fetch(`${sim.apiUrl}/orgs/${ORG}/actions/runners/${runner('fail-1')!.id}`, {
        method: 'DELETE',
        headers: { authorization: `token ${sim.token}` },
      });
      await putRunnerParameter(ssm, PREFIX, id, { mode: 'jit', jitConfig }, { fleet, runner: 'fail-1' });
      expect(
        await waitFor(
          'ended',
          () => ended(events, id),
          90_000,
          () => b.output(id),
        ),
      ).toMatchObject({ reason: 'shutdown', action: 'terminated' });
      expect(await exitTag(id)).toBe('1');
      const seen = await providerView(fleet, 'fail-1');
      expect(seen).toMatchObject({ state: 'failed', message: 'runner exited with code 1' });
      expect(seen?.interrupted).toBeUndefined();
    },
  );

  it(
    "runs an instance launched from a launch template, with the template's shutdown behaviour",
    { timeout: 180_000 },
    async () => {
      const fleet = 'template-fleet';
      const { bridge: b, events } = await bridge(fleet);
      const template = await ec2.send(
        new CreateLaunchTemplateCommand({
          LaunchTemplateName: 'runner-fleet-bridge-test',
          LaunchTemplateData: {
            ImageId: 'ami-0123456789abcdef0',
            UserData: userDataBase64(renderUserData({ ssmPrefix: PREFIX })),
            InstanceInitiatedShutdownBehavior: 'terminate',
          },
        }),
      );
      const reply = await ec2.send(
        new RunInstancesCommand({
          MinCount: 1,
          MaxCount: 1,
          LaunchTemplate: {
            LaunchTemplateId: template.LaunchTemplate!.LaunchTemplateId!,
            Version: '$Latest',
          },
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: [
                { Key: TAG_FLEET, Value: fleet },
                { Key: TAG_RUNNER, Value: 'lt-1' },
              ],
            },
          ],
        }),
      );
      const id = reply.Instances![0]!.InstanceId!;
      // What moto reports for such an instance: the template's user data, but not its shutdown behaviour (EC2 would
      // report both); the bridge reads the template for what the instance lacks.
      const userData = await ec2.send(
        new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'userData' }),
      );
      expect(userData.UserData?.Value).toBe(userDataBase64(renderUserData({ ssmPrefix: PREFIX })));
      const attribute = await ec2.send(
        new DescribeInstanceAttributeCommand({
          InstanceId: id,
          Attribute: 'instanceInitiatedShutdownBehavior',
        }),
      );
      expect(attribute.InstanceInitiatedShutdownBehavior?.Value).toBe('stop');
      const jitConfig = await jitRegistration(sim, 'lt-1', 'l-lt-1');
      await putRunnerParameter(ssm, PREFIX, id, { mode: 'jit', jitConfig }, { fleet, runner: 'lt-1' });
      await waitFor(
        'runner lt-1 online',
        () => runner('lt-1')?.status === 'online',
        90_000,
        () => b.output(id),
      );
      sim.createJobs({ owner: ORG, repo: 'app', labels: ['l-lt-1'], durationMs: 100 });
      expect(await waitFor('ended', () => ended(events, id), 90_000)).toMatchObject({ action: 'terminated' });
      expect(await instanceState(ec2, id)).toBe('terminated');
    },
  );

  it(
    "runs an instance of an instant fleet (CreateFleet), with its launch template's shutdown behaviour",
    { timeout: 180_000 },
    async () => {
      const fleet = 'create-fleet-fleet';
      const { bridge: b, events } = await bridge(fleet);
      const template = await ec2.send(
        new CreateLaunchTemplateCommand({
          LaunchTemplateName: 'runner-fleet-bridge-fleet-test',
          LaunchTemplateData: {
            ImageId: 'ami-0123456789abcdef0',
            InstanceType: 't3.micro',
            UserData: userDataBase64(renderUserData({ ssmPrefix: PREFIX })),
            InstanceInitiatedShutdownBehavior: 'terminate',
          },
        }),
      );
      const reply = await ec2.send(
        new CreateFleetCommand({
          Type: 'instant',
          LaunchTemplateConfigs: [
            {
              LaunchTemplateSpecification: {
                LaunchTemplateId: template.LaunchTemplate!.LaunchTemplateId!,
                Version: '$Default',
              },
              Overrides: [{ InstanceType: 't3.micro' }, { InstanceType: 't3.small' }],
            },
          ],
          TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: 'spot' },
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: [
                { Key: TAG_FLEET, Value: fleet },
                { Key: TAG_RUNNER, Value: 'cf-1' },
              ],
            },
          ],
        }),
      );
      const id = reply.Instances![0]!.InstanceIds![0]!;
      // moto neither tags this instance with its template nor reports the template's shutdown behaviour.
      const attribute = await ec2.send(
        new DescribeInstanceAttributeCommand({
          InstanceId: id,
          Attribute: 'instanceInitiatedShutdownBehavior',
        }),
      );
      expect(attribute.InstanceInitiatedShutdownBehavior?.Value).toBe('stop');
      const jitConfig = await jitRegistration(sim, 'cf-1', 'l-cf-1');
      await putRunnerParameter(ssm, PREFIX, id, { mode: 'jit', jitConfig }, { fleet, runner: 'cf-1' });
      await waitFor(
        'runner cf-1 online',
        () => runner('cf-1')?.status === 'online',
        90_000,
        () => b.output(id),
      );
      sim.createJobs({ owner: ORG, repo: 'app', labels: ['l-cf-1'], durationMs: 100 });
      expect(await waitFor('ended', () => ended(events, id), 90_000)).toMatchObject({
        reason: 'shutdown',
        action: 'terminated',
      });
      expect(await instanceState(ec2, id)).toBe('terminated');
    },
  );

  it(
    'interrupt(): the notice shows in IMDS, then the machine vanishes and the instance is terminated',
    { timeout: 180_000 },
    async () => {
      // The start script looks for a notice every second here (5 s on EC2).
      const { bridge: b, events } = await bridge('spot-fleet', { env: { RUNNER_FLEET_SPOT_POLL: '1' } });
      const id = await onlineInstance(b, 'spot-fleet', 'spot-1');
      const [job] = sim.createJobs({ owner: ORG, repo: 'app', labels: ['l-spot-1'], durationMs: 600_000 });
      await waitFor('job running', () => sim.job(job!.id)?.status === 'in_progress', 30_000);
      const imds = b.imdsUrl(id)!;
      const interrupted = b.interrupt(id, { noticeMs: 8000 });
      const token = await (
        await fetch(`${imds}/latest/api/token`, {
          method: 'PUT',
          headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' },
        })
      ).text();
      const notice = await fetch(`${imds}/latest/meta-data/spot/instance-action`, {
        headers: { 'X-aws-ec2-metadata-token': token },
      });
      expect(notice.status).toBe(200);
      const body = (await notice.json()) as { action: string; time: string };
      expect(body.action).toBe('terminate');
      expect(Date.parse(body.time)).toBeGreaterThan(Date.now());
      // During the notice the machine still runs, and tags itself: AWS may take it without another word.
      expect(await instanceState(ec2, id)).toBe('running');
      expect(await waitFor('interrupted tag', async () => (await exitTag(id)) === 'interrupted', 8000)).toBe(
        true,
      );
      await interrupted;
      expect(ended(events, id)).toMatchObject({ reason: 'interrupted', action: 'terminated' });
      const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
      const instance = described.Reservations![0]!.Instances![0]!;
      expect(instance.State?.Name).toBe('terminated');
      // moto cannot record a spot reason: EC2 would say Server.SpotInstanceTermination. The tag tells the provider.
      expect(instance.StateReason?.Code).toBe('Client.UserInitiatedShutdown');
      expect(await providerView('spot-fleet', 'spot-1')).toMatchObject({
        state: 'failed',
        interrupted: true,
      });
      expect(processesUnder(id)).toEqual([]);
      // Killed without a word: the broker loses the runner and fails its job.
      await waitFor('job failed', () => sim.job(job!.id)?.status === 'completed', 60_000);
      expect(sim.job(job!.id)!.conclusion).toBe('failure');
      expect(b.stats.interrupted).toBe(1);
      await expect(b.interrupt(id)).rejects.toThrow(/has no running machine here/);
    },
  );

  it(
    'stops the machine of an instance terminated by someone else (the controller)',
    { timeout: 180_000 },
    async () => {
      const { bridge: b, events } = await bridge('external-fleet');
      const id = await onlineInstance(b, 'external-fleet', 'ext-1');
      expect(processesUnder(id).length).toBeGreaterThan(0);
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
      expect(await waitFor('ended', () => ended(events, id), 60_000)).toMatchObject({
        reason: 'external',
        action: 'none',
      });
      expect(processesUnder(id)).toEqual([]);
      // SIGTERM reached the runner, which closed its session: GitHub sees it offline at once.
      await waitFor('runner offline', () => runner('ext-1')?.status === 'offline', 10_000);
      expect(b.stats.stoppedExternally).toBe(1);
    },
  );

  it(
    'respects shutdown behaviour stop, idles without user data, and leaves other fleets alone',
    { timeout: 180_000 },
    async () => {
      const { bridge: b, events } = await bridge('misc-fleet');
      const launch = async (fleet: string, userData?: string) => {
        const reply = await ec2.send(
          new RunInstancesCommand({
            ImageId: 'ami-0123456789abcdef0',
            MinCount: 1,
            MaxCount: 1,
            ...(userData === undefined ? {} : { UserData: userDataBase64(userData) }),
            TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: TAG_FLEET, Value: fleet }] }],
          }),
        );
        return reply.Instances![0]!.InstanceId!;
      };
      // No InstanceInitiatedShutdownBehavior: EC2's default, stop.
      const stopping = await launch('misc-fleet', '#!/bin/bash\necho "machine up"\nshutdown -h now\n');
      const idle = await launch('misc-fleet');
      const foreign = await launch('other-fleet', '#!/bin/bash\nshutdown -h now\n');
      expect(await waitFor('ended', () => ended(events, stopping), 60_000)).toMatchObject({
        reason: 'shutdown',
        action: 'stopped',
      });
      expect(await instanceState(ec2, stopping)).toBe('stopped');
      expect(b.output(stopping)).toContain('machine up');
      await waitFor(
        'idle seen',
        () => events.find((e) => e.type === 'no-user-data' && e.instanceId === idle),
        30_000,
      );
      expect(await instanceState(ec2, idle)).toBe('running');
      expect(await instanceState(ec2, foreign)).toBe('running');
      expect(b.instances().map((i) => i.instanceId)).not.toContain(foreign);
    },
  );

  it('stop() stops every machine and removes every sandbox', { timeout: 180_000 }, async () => {
    const { bridge: b, events } = await bridge('stop-fleet');
    const id = await onlineInstance(b, 'stop-fleet', 'stop-1');
    expect(readdirSync(sandboxes).filter((d) => d.includes(id))).toHaveLength(1);
    await b.stop();
    expect(ended(events, id)).toMatchObject({ reason: 'bridge-stopped', action: 'none' });
    expect(readdirSync(sandboxes).filter((d) => d.includes(id))).toEqual([]);
    expect(processesUnder(id)).toEqual([]);
    // moto is left as it was.
    expect(await instanceState(ec2, id)).toBe('running');
  });
});
