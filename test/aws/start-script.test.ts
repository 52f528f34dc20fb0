/**
 * The EC2 start script (src/aws/start-script/runner-start.sh, as the default user data embeds it) on simulated
 * machines: moto plays EC2 and SSM, the EC2 bridge runs the user data with bash and real curl and AWS CLI against an
 * IMDSv2 stand-in, the runner emulator plays actions/runner against the in-process GitHub simulator. The runner
 * parameter is written the way the controller will: a tagged SecureString, after the instance exists.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { renderUserData } from '../../src/aws/user-data.js';
import type { UserDataSettings } from '../../src/aws/user-data.js';
import { startEc2Bridge } from '../../src/sim/ec2-bridge/index.js';
import type { Ec2Bridge, Ec2BridgeEvent, Ec2BridgeOptions } from '../../src/sim/ec2-bridge/index.js';
import { startSimulator } from '../../src/sim/github/index.js';
import type { Simulator } from '../../src/sim/github/index.js';
import {
  ArgvWatch,
  ORG,
  REGION,
  awsClients,
  emulatorCommand,
  instanceState,
  jitRegistration,
  launchInstance,
  needles,
  parameterExists,
  putRunnerParameter,
  registrationToken,
  waitFor,
} from '../support/ec2-machines.js';
import { MOTO_CREDENTIALS, awsPeersBin, requireAwsPeers, startMoto } from '../support/moto.js';
import type { MotoServer } from '../support/moto.js';

const PREFIX = '/runner-fleet/start-script';

describe.skipIf(!requireAwsPeers('aws/start-script'))('EC2 start script', () => {
  let moto: MotoServer;
  let sim: Simulator;
  let ec2: EC2Client;
  let ssm: SSMClient;
  let runnerCommand: string[];
  let dir: string;
  const argv = new ArgvWatch();
  const bridges: Ec2Bridge[] = [];
  const secrets: string[] = [];

  beforeAll(async () => {
    [moto, sim] = await Promise.all([
      startMoto(),
      startSimulator({ orgs: [ORG], runnerOfflineAfterMs: 5000 }),
    ]);
    ({ ec2, ssm } = awsClients(moto));
    runnerCommand = emulatorCommand();
    dir = mkdtempSync(join(tmpdir(), 'rf-start-script-'));
  });

  afterEach(async () => {
    await Promise.all(bridges.splice(0).map((b) => b.stop()));
  });

  afterAll(async () => {
    argv.stop();
    await Promise.all([moto?.stop(), sim?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
    // Over the whole file: no process ever had a registration on its command line.
    expect(argv.samples).toBeGreaterThan(0);
    expect(argv.hits).toEqual([]);
  });

  /** A bridge for one test's fleet, recording its events. */
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
      onEvent: (event) => events.push(event),
      ...extra,
    });
    bridges.push(b);
    return { bridge: b, events };
  }

  function userData(settings: Partial<UserDataSettings> = {}): string {
    return renderUserData({ ssmPrefix: PREFIX, ...settings });
  }

  function secret(value: string): string {
    secrets.push(value);
    argv.watch(value);
    return value;
  }

  /** Nothing the machine printed holds a registration. */
  function expectNoSecretIn(text: string): void {
    for (const s of secrets) for (const needle of needles(s)) expect(text).not.toContain(needle);
  }

  const ended = (events: Ec2BridgeEvent[], instanceId: string) =>
    events.find(
      (e): e is Extract<Ec2BridgeEvent, { type: 'ended' }> =>
        e.type === 'ended' && e.instanceId === instanceId,
    );

  const onlineRunner = (name: string) => sim.runners().find((r) => r.name === name && r.status === 'online');

  it(
    'jit: reads and deletes its parameter, the runner takes the job, the instance terminates itself',
    { timeout: 180_000 },
    async () => {
      const fleet = 'jit-fleet';
      const { bridge: b, events } = await bridge(fleet);
      const id = await launchInstance(ec2, { fleet, runner: 'jit-1', userData: userData() });
      const jit = secret(await jitRegistration(sim, 'jit-1', 'l-jit-1'));
      const name = await putRunnerParameter(
        ssm,
        PREFIX,
        id,
        { mode: 'jit', jitConfig: jit },
        { fleet, runner: 'jit-1' },
      );

      await waitFor(
        'runner jit-1 online',
        () => onlineRunner('jit-1'),
        90_000,
        () => b.output(id),
      );
      // The script deletes the parameter right after reading it, before the runner starts.
      expect(await parameterExists(ssm, name)).toBe(false);
      const [job] = sim.createJobs({ owner: ORG, repo: 'app', labels: ['l-jit-1'], durationMs: 300 });
      const end = await waitFor(
        'instance ended',
        () => ended(events, id),
        90_000,
        () => b.output(id),
      );
      expect(end).toMatchObject({ reason: 'shutdown', action: 'terminated' });
      expect(sim.job(job!.id)).toMatchObject({
        status: 'completed',
        conclusion: 'success',
        runnerName: 'jit-1',
      });
      expect(await instanceState(ec2, id)).toBe('terminated');
      const output = b.output(id);
      expect(output).toContain(`instance ${id} in ${REGION}; runner parameter ${name}`);
      expect(output).toContain('deleted the runner parameter');
      expect(output).toContain('Job ');
      expectNoSecretIn(output);
      expect(await b.calls(id)).toEqual([]); // sandbox removed once the machine ended
    },
  );

  it(
    'token, ephemeral: config.sh with the token in the environment, then run.sh; one job',
    { timeout: 180_000 },
    async () => {
      const fleet = 'token-fleet';
      const { bridge: b, events } = await bridge(fleet);
      const id = await launchInstance(ec2, { fleet, runner: 'tok-1', userData: userData() });
      const token = secret(await registrationToken(sim));
      const url = sim.webUrl({ kind: 'org', org: ORG });
      await putRunnerParameter(
        ssm,
        PREFIX,
        id,
        {
          mode: 'token',
          url,
          token,
          name: 'tok-1',
          labels: ['l-tok-1', 'gpu'],
          runnerGroup: 'Default',
          ephemeral: true,
        },
        { fleet, runner: 'tok-1' },
      );
      await waitFor(
        'runner tok-1 online',
        () => onlineRunner('tok-1'),
        90_000,
        () => b.output(id),
      );
      const calls = await b.calls(id);
      expect(calls).toEqual([
        `config.sh --unattended --url ${url} --name tok-1 --runnergroup Default --no-default-labels --work _work ` +
          '--labels l-tok-1,gpu --ephemeral',
        'run.sh',
      ]);
      expect(sim.runners().find((r) => r.name === 'tok-1')).toMatchObject({
        mode: 'token',
        ephemeral: true,
        labels: ['l-tok-1', 'gpu'],
      });
      const [job] = sim.createJobs({ owner: ORG, repo: 'app', labels: ['l-tok-1'], durationMs: 300 });
      expect(
        await waitFor(
          'instance ended',
          () => ended(events, id),
          90_000,
          () => b.output(id),
        ),
      ).toMatchObject({
        reason: 'shutdown',
        action: 'terminated',
      });
      expect(sim.job(job!.id)).toMatchObject({ conclusion: 'success', runnerName: 'tok-1' });
      expectNoSecretIn(b.output(id));
    },
  );

  it(
    'token, persistent: run.sh exiting 2 (retryable) runs again from the saved settings and serves job after job',
    { timeout: 180_000 },
    async () => {
      // run.sh fails once with the runner's retryable exit code, as when the service is briefly unreachable.
      const flaky = join(dir, 'flaky-runner.sh');
      writeFileSync(
        flaky,
        [
          '#!/bin/bash',
          'case " $* " in *" --config-only "*) ;; *)',
          '  root=${*: -1}',
          '  if [ ! -e "$root/.failed-once" ]; then touch "$root/.failed-once"; echo "flaky: exit $FLAKY_CODE" >&2; exit "$FLAKY_CODE"; fi',
          'esac',
          `exec ${runnerCommand.map((w) => `'${w}'`).join(' ')} "$@"`,
          '',
        ].join('\n'),
      );
      chmodSync(flaky, 0o755);
      const fleet = 'persistent-fleet';
      const { bridge: b, events } = await bridge(fleet, {
        runnerCommand: [flaky],
        env: { FLAKY_CODE: '2', RUNNER_FLEET_RESTART_DELAY: '1' },
      });
      const id = await launchInstance(ec2, { fleet, runner: 'keep-1', userData: userData() });
      const token = secret(await registrationToken(sim));
      await putRunnerParameter(
        ssm,
        PREFIX,
        id,
        {
          mode: 'token',
          url: sim.webUrl({ kind: 'org', org: ORG }),
          token,
          name: 'keep-1',
          labels: ['l-keep-1'],
          runnerGroup: 'Default',
          ephemeral: false,
        },
        { fleet, runner: 'keep-1' },
      );
      await waitFor(
        'runner keep-1 online',
        () => onlineRunner('keep-1'),
        90_000,
        () => b.output(id),
      );
      const output = b.output(id);
      expect(output).toContain('flaky: exit 2');
      expect(output).toContain('the runner hit a retryable error (exit code 2): starting it again in 1 s');
      expect((await b.calls(id)).map((c) => c.split(' ')[0])).toEqual(['config.sh', 'run.sh', 'run.sh']);
      for (const n of [1, 2]) {
        const [job] = sim.createJobs({ owner: ORG, repo: 'app', labels: ['l-keep-1'], durationMs: 100 });
        await waitFor(`job ${n} done`, () => sim.job(job!.id)?.status === 'completed', 60_000);
        expect(sim.job(job!.id)).toMatchObject({ conclusion: 'success', runnerName: 'keep-1' });
      }
      // Still up: a persistent runner does not end the instance after a job.
      expect(ended(events, id)).toBeUndefined();
      expect(await instanceState(ec2, id)).toBe('running');
      expectNoSecretIn(b.output(id));
    },
  );

  it(
    'jit: an updating runner (exit 3) runs again; an ephemeral one stops at exit 2',
    { timeout: 180_000 },
    async () => {
      const flaky = join(dir, 'updating-runner.sh');
      writeFileSync(
        flaky,
        [
          '#!/bin/bash',
          'root=${*: -1}',
          'if [ ! -e "$root/.failed-once" ]; then touch "$root/.failed-once"; echo "flaky: exit $FLAKY_CODE" >&2; exit "$FLAKY_CODE"; fi',
          `exec ${runnerCommand.map((w) => `'${w}'`).join(' ')} "$@"`,
          '',
        ].join('\n'),
      );
      chmodSync(flaky, 0o755);
      const updating = await bridge('updating-fleet', {
        runnerCommand: [flaky],
        env: { FLAKY_CODE: '3', RUNNER_FLEET_RESTART_DELAY: '1' },
      });
      const failing = await bridge('failing-fleet', { runnerCommand: [flaky], env: { FLAKY_CODE: '2' } });
      const upId = await launchInstance(ec2, {
        fleet: 'updating-fleet',
        runner: 'up-1',
        userData: userData(),
      });
      const failId = await launchInstance(ec2, {
        fleet: 'failing-fleet',
        runner: 'fail-1',
        userData: userData(),
      });
      const tags = (fleet: string, runner: string) => ({ fleet, runner });
      const upJit = secret(await jitRegistration(sim, 'up-1', 'l-up-1'));
      const failJit = secret(await jitRegistration(sim, 'fail-1', 'l-fail-1'));
      await putRunnerParameter(
        ssm,
        PREFIX,
        upId,
        { mode: 'jit', jitConfig: upJit },
        tags('updating-fleet', 'up-1'),
      );
      await putRunnerParameter(
        ssm,
        PREFIX,
        failId,
        { mode: 'jit', jitConfig: failJit },
        tags('failing-fleet', 'fail-1'),
      );

      const failEnd = await waitFor(
        'fail-1 ended',
        () => ended(failing.events, failId),
        90_000,
        () => failing.bridge.output(failId),
      );
      expect(failEnd).toMatchObject({ reason: 'shutdown', action: 'terminated' });
      expect(failing.bridge.output(failId)).toContain('the runner exited with code 2; it will not run again');

      await waitFor(
        'runner up-1 online',
        () => onlineRunner('up-1'),
        90_000,
        () => updating.bridge.output(upId),
      );
      expect(updating.bridge.output(upId)).toContain(
        'the runner is updating (exit code 3): starting it again in 1 s',
      );
      sim.createJobs({ owner: ORG, repo: 'app', labels: ['l-up-1'], durationMs: 100 });
      expect(
        await waitFor(
          'up-1 ended',
          () => ended(updating.events, upId),
          90_000,
          () => updating.bridge.output(upId),
        ),
      ).toMatchObject({ reason: 'shutdown', action: 'terminated' });
      expectNoSecretIn(updating.bridge.output(upId) + failing.bridge.output(failId));
    },
  );

  it('polls with backoff for a parameter written late', { timeout: 180_000 }, async () => {
    const fleet = 'late-fleet';
    const { bridge: b, events } = await bridge(fleet);
    const id = await launchInstance(ec2, { fleet, runner: 'late-1', userData: userData() });
    await waitFor(
      'the script waiting',
      () => b.output(id).includes('the runner parameter is not there yet'),
      90_000,
    );
    // Several reads fail before the controller gets to it.
    await new Promise((r) => setTimeout(r, 4_000));
    const jit = secret(await jitRegistration(sim, 'late-1', 'l-late-1'));
    await putRunnerParameter(ssm, PREFIX, id, { mode: 'jit', jitConfig: jit }, { fleet, runner: 'late-1' });
    await waitFor(
      'runner late-1 online',
      () => onlineRunner('late-1'),
      90_000,
      () => b.output(id),
    );
    sim.createJobs({ owner: ORG, repo: 'app', labels: ['l-late-1'], durationMs: 100 });
    expect(await waitFor('instance ended', () => ended(events, id), 90_000)).toMatchObject({
      reason: 'shutdown',
    });
    expect(b.output(id).match(/the runner parameter is not there yet/g)).toHaveLength(1);
    expectNoSecretIn(b.output(id));
  });

  it(
    'gives up at the deadline when the parameter never comes: a clear reason, then shutdown',
    { timeout: 180_000 },
    async () => {
      const fleet = 'never-fleet';
      const { bridge: b, events } = await bridge(fleet);
      const id = await launchInstance(ec2, {
        fleet,
        runner: 'never-1',
        userData: userData({ parameterTimeoutSeconds: 5 }),
      });
      const end = await waitFor(
        'instance ended',
        () => ended(events, id),
        120_000,
        () => b.output(id),
      );
      expect(end).toMatchObject({ reason: 'shutdown', action: 'terminated' });
      expect(b.output(id)).toContain(
        `no runner parameter ${PREFIX}/${id} after 5 s: runner-fleet never wrote it`,
      );
      expect(b.output(id)).toContain('shutting the instance down (shutdown -h now)');
      expect(b.instances().find((i) => i.instanceId === id)).toMatchObject({
        reason: 'shutdown',
        exitCode: 1,
      });
      expect(await instanceState(ec2, id)).toBe('terminated');
    },
  );

  it(
    'runs the job hooks around the job, without the registration in their environment',
    { timeout: 180_000 },
    async () => {
      const hooksLog = join(dir, 'hooks.log');
      const hook = (name: string, tag: string) => {
        const path = join(dir, name);
        writeFileSync(
          path,
          `echo "${tag} run=$GITHUB_RUN_ID repo=$GITHUB_REPOSITORY runner=$RUNNER_NAME inputs=$(env | grep -c ^ACTIONS_RUNNER_INPUT_)" >>"${hooksLog}"\n`,
        );
        return path;
      };
      const fleet = 'hooks-fleet';
      const { bridge: b, events } = await bridge(fleet);
      const id = await launchInstance(ec2, {
        fleet,
        runner: 'hooked-1',
        userData: userData({
          hooks: {
            jobStarted: hook('started.sh', 'started'),
            jobCompleted: hook('completed.sh', 'completed'),
          },
        }),
      });
      const jit = secret(await jitRegistration(sim, 'hooked-1', 'l-hooked-1'));
      await putRunnerParameter(
        ssm,
        PREFIX,
        id,
        { mode: 'jit', jitConfig: jit },
        { fleet, runner: 'hooked-1' },
      );
      await waitFor(
        'runner hooked-1 online',
        () => onlineRunner('hooked-1'),
        90_000,
        () => b.output(id),
      );
      const [job] = sim.createJobs({ owner: ORG, repo: 'app', labels: ['l-hooked-1'], durationMs: 300 });
      await waitFor(
        'instance ended',
        () => ended(events, id),
        90_000,
        () => b.output(id),
      );
      const runId = sim.job(job!.id)!.runId;
      expect(readFileSync(hooksLog, 'utf8').trim().split('\n')).toEqual([
        `started run=${runId} repo=${ORG}/app runner=hooked-1 inputs=0`,
        `completed run=${runId} repo=${ORG}/app runner=hooked-1 inputs=0`,
      ]);
      expect(sim.job(job!.id)!.conclusion).toBe('success');
      expectNoSecretIn(b.output(id));
    },
  );
});
