/**
 * A spot interruption end to end: the controller as `start` composes it (the ec2 module's own factory and start
 * script, pointed at moto with --aws-endpoint's connection), the GitHub simulator delivering webhooks to it, and the
 * EC2 bridge playing the instances. A job runs on a spot runner; the bridge interrupts that instance (the notice in
 * IMDS, then the machine vanishes and moto terminates it, as user-initiated: moto cannot say why). The start script saw
 * the notice and tagged its instance `interrupted`, so the provider reports the ended instance interrupted (and a
 * `spot-interruption` notice); the controller finishes the busy runner, removes its registration once GitHub has
 * failed the lost job, asks GitHub to re-run it (the scale set opted in), and the new attempt is served by a new
 * runner on a new instance. Needs `npm run build` (the bridge's runners are dist/cli/main.js emulate-runner).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { composeController } from '../../src/app/compose.js';
import type { Controller } from '../../src/app/compose.js';
import { loadConfig } from '../../src/config/index.js';
import { TAG_EXIT_CODE, TAG_RUNNER } from '../../src/aws/tags.js';
import { startEc2Bridge } from '../../src/sim/ec2-bridge/index.js';
import type { Ec2Bridge, Ec2BridgeEvent } from '../../src/sim/ec2-bridge/index.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { emulatorCommand, waitFor } from '../support/ec2-machines.js';
import { LogSink } from '../support/log-sink.js';
import type { MotoServer } from '../support/moto.js';
import { MOTO_CREDENTIALS, awsPeersBin, requireAwsPeers, startMoto } from '../support/moto.js';
import { simulatorCredentials, startFleetSimulator } from '../support/sim-fleet.js';
import type { AwsWorld } from './ec2-fixtures.js';
import { buildAwsWorld, PROFILE, REGION } from './ec2-fixtures.js';

const FLEET = 'spot-fleet';
const SET = 'spot';
const LABEL = 'spot-linux';

describe.skipIf(!requireAwsPeers('aws/ec2-interruption'))('spot interruption of a busy EC2 runner', () => {
  // Made when the suite runs: a skipped suite's body is still collected, and its afterAll would not remove it.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rf-interrupt-'));
  });
  let moto: MotoServer;
  let world: AwsWorld;
  let sim: Simulator;
  let bridge: Ec2Bridge;
  let controller: Controller;
  const logs = new LogSink();
  const bridgeEvents: Ec2BridgeEvent[] = [];

  beforeAll(async () => {
    [moto, sim] = await Promise.all([
      startMoto(),
      startFleetSimulator({
        // Re-running a job needs the App's actions permission with write access.
        permissions: {
          actions: 'write',
          administration: 'write',
          metadata: 'read',
          organization_self_hosted_runners: 'write',
        },
        // GitHub gives up on a vanished runner's job after a while; here within seconds.
        runnerOfflineAfterMs: 2000,
        offlineJobTimeoutMs: 1000,
      }),
    ]);
    world = await buildAwsWorld(moto);
    bridge = await startEc2Bridge({
      endpoint: moto.url,
      region: REGION,
      credentials: MOTO_CREDENTIALS,
      fleet: FLEET,
      runnerCommand: emulatorCommand(),
      path: [awsPeersBin()!],
      // The start script looks for an interruption notice every second (5 s on EC2).
      env: { RUNNER_FLEET_SPOT_POLL: '1' },
      pollMs: 200,
      stopGraceMs: 3000,
      onEvent: (event) => bridgeEvents.push(event),
    });
    const file = join(dir, 'fleet.yaml');
    writeFileSync(
      file,
      stringify({
        name: FLEET,
        ...simulatorCredentials(sim, dir),
        server: { port: 0 },
        store: { path: join(dir, 'fleet.db') },
        controller: { resyncInterval: '1s', orphanGracePeriod: '10m' },
        scaleSets: [
          {
            name: SET,
            scope: { org: 'octo-org' },
            labels: [LABEL],
            max: 2,
            rerunInterruptedJobs: true,
            provider: {
              kind: 'ec2',
              region: REGION,
              imageId: world.imageId,
              instanceProfile: PROFILE,
              instanceTypes: ['t3.micro'],
              subnetIds: [world.subnetIds[0]],
              capacity: 'spot',
              userData: { parameterTimeout: '2m' },
            },
          },
        ],
      }),
    );
    const loaded = loadConfig(file, { env: {} });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    controller = await composeController({
      config: loaded.config,
      env: {
        AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
      },
      connection: { awsEndpoint: moto.url },
      logDestination: logs,
      logLevel: 'debug',
    });
    sim.setWebhook(`${await controller.start()}/webhook`);
  }, 180_000);

  afterAll(async () => {
    await controller?.stop();
    await bridge?.stop();
    world?.destroy();
    await Promise.all([sim?.close(), moto?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  async function instanceOf(runner: string) {
    const reply = await world.ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG_RUNNER}`, Values: [runner] }] }),
    );
    return reply.Reservations?.flatMap((r) => r.Instances ?? [])[0];
  }

  it(
    'the busy runner is finished and deregistered, its job re-run and served by a new runner',
    { timeout: 300_000 },
    async () => {
      const [created] = sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: [LABEL],
        durationMs: 30_000,
      });
      const jobId = created!.id;
      const first = await waitFor(
        'the job running on a runner',
        () => {
          const job = sim.job(jobId);
          return job?.status === 'in_progress' ? job.runnerName! : undefined;
        },
        120_000,
        () => ({ job: sim.job(jobId), runners: sim.runners().map((r) => [r.name, r.status, r.busy]) }),
      );
      const instance = await instanceOf(first);
      expect(instance?.InstanceLifecycle).toBe('spot');
      const instanceId = instance!.InstanceId!;

      await bridge.interrupt(instanceId, { noticeMs: 4000 });
      expect(bridgeEvents).toContainEqual({
        type: 'ended',
        instanceId,
        reason: 'interrupted',
        action: 'terminated',
      });
      const ended = await instanceOf(first);
      expect(ended?.State?.Name).toBe('terminated');
      expect(ended?.Tags?.find((t) => t.Key === TAG_EXIT_CODE)?.Value).toBe('interrupted');

      // GitHub fails the lost job; the controller removes the registration and asks for a re-run.
      await waitFor(
        'the registration of the interrupted runner removed',
        () => !sim.runners().some((r) => r.name === first),
        120_000,
        () => sim.runners().map((r) => [r.name, r.status, r.busy]),
      );
      expect(sim.job(jobId)).toMatchObject({ status: 'completed', conclusion: 'failure' });
      const rerun = await waitFor(
        'the re-run attempt of the job',
        () => sim.jobs().find((j) => j.runId === created!.runId && j.id !== jobId),
        120_000,
        () => controller.store.runner(first),
      );
      expect(rerun.runAttempt).toBe(2);
      // The new attempt is served by a new runner of the scale set, on a new instance, and runs to its end.
      const served = await waitFor(
        'the re-run job completed',
        () => {
          const job = sim.job(rerun.id);
          return job?.status === 'completed' ? job : undefined;
        },
        150_000,
        () => ({ job: sim.job(rerun.id), runners: sim.runners().map((r) => [r.name, r.status, r.busy]) }),
      );
      expect(served.conclusion).toBe('success');
      expect(served.runnerName).not.toBe(first);
      expect(served.runnerName?.startsWith(`${SET}-`)).toBe(true);
      expect((await instanceOf(served.runnerName!))?.InstanceId).not.toBe(instanceId);

      // The controller's record of the interrupted runner says what happened, and goes.
      await waitFor(
        'the interrupted runner record deleted',
        () => controller.store.runner(first)?.state === 'deleted',
        60_000,
      );
      expect(controller.store.runner(first)?.reason).toBe(
        `job ${jobId} re-run after the instance running it was interrupted`,
      );
      const events = controller.store.recentEvents({ runner: first, limit: 50 });
      expect(events.map((e) => [e.kind, e.event])).toEqual(
        expect.arrayContaining([
          ['instance', 'spot-interruption'],
          ['runner', 'finished'],
          ['job', 're-run'],
          ['runner', 'deleted'],
        ]),
      );
      expect(
        controller.store.recentEvents({ runner: first, limit: 50 }).find((e) => e.event === 'finished')
          ?.reason,
      ).toBe(`instance interrupted while running job ${jobId}`);
      // One re-run, counted like every GitHub call.
      expect(
        controller.github.apiCallCount().byRoute['POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun'],
      ).toBe(1);
    },
  );
});
