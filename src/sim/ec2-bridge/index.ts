/**
 * TEST AID, not part of the controller: the machine side of EC2 instances in moto.
 *
 * moto keeps EC2 instances as records ("running" the moment they are launched) and runs nothing, so an instance
 * runner-fleet launches there never becomes a runner. The bridge plays the machines, as kwok's pods get their
 * runners from the kube bridge:
 * - it polls DescribeInstances (tag runner-fleet:fleet, paginated) and, for each new running instance, reads its
 *   user data (DescribeInstanceAttribute userData, or the launch template's when the instance came from one), makes
 *   a sandbox for its disk (sandbox.ts), starts an IMDSv2 stand-in (src/sim/ec2/imds.ts) that serves its identity
 *   and the bridge's credentials as its instance profile, and runs the user data with bash: the AWS CLI reaches
 *   moto through AWS_ENDPOINT_URL and authenticates through the IMDS stand-in, as on a real instance;
 * - the runner dir's run.sh and config.sh run the runner emulator (src/sim/runner), and `shutdown` is a stub;
 * - when the user data shuts the machine down (the stub) or exits, the bridge stops the processes left and applies
 *   the instance's shutdown behaviour in moto (TerminateInstances, or StopInstances for `stop`);
 * - an instance terminated or stopped by someone else (runner-fleet) gets its process tree stopped: SIGTERM, then
 *   SIGKILL after `stopGraceMs`;
 * - `interrupt()` plays a spot interruption: the notice shows in IMDS (meta-data/spot/instance-action), and after
 *   the notice period the machine vanishes (its processes are killed) and the instance is terminated in moto. moto
 *   cannot record why an instance ended: its state reason is Client.UserInitiatedShutdown, where EC2 would say
 *   Server.SpotInstanceTermination. The provider sees the instance terminated; the bridge's events say why.
 *
 * The sandboxes hold the runners' credentials once configured: each is removed when its instance ends, and all of
 * them by stop(). The bridge imports nothing of the controller (src/core, src/providers, src/store, src/github).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  DescribeInstanceAttributeCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  StopInstancesCommand,
  TerminateInstancesCommand,
  paginateDescribeFleets,
  paginateDescribeInstances,
} from '@aws-sdk/client-ec2';
import type { Instance as Ec2Instance } from '@aws-sdk/client-ec2';
import type { Logger } from 'pino';
import { TAG_FLEET } from '../../aws/tags.js';
import { sleepUnlessAborted } from '../../lib/async.js';
import { startImds } from '../ec2/imds.js';
import type { ImdsServer } from '../ec2/imds.js';
import { createSandbox } from './sandbox.js';
import type { Sandbox } from './sandbox.js';

export interface Ec2BridgeCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface Ec2BridgeOptions {
  /** moto's URL: the bridge's own EC2 calls, and AWS_ENDPOINT_URL of the machines. */
  readonly endpoint: string;
  readonly region: string;
  /** The bridge's credentials, also served to every machine as its instance profile's. */
  readonly credentials: Ec2BridgeCredentials;
  /** Only this fleet's instances (tag runner-fleet:fleet); default every instance carrying that tag. */
  readonly fleet?: string;
  /** The runner emulator's command line; default `node <repo>/dist/cli/main.js emulate-runner` (build first). */
  readonly runnerCommand?: readonly string[];
  /** Directories put on the machines' PATH before the standard ones: where `aws` is, above all. */
  readonly path?: readonly string[];
  /** More environment for the user data (RUNNER_FLEET_PARAMETER_TIMEOUT, RUNNER_FLEET_EMULATOR_RETRY_MS...). */
  readonly env?: Readonly<Record<string, string>>;
  readonly logger?: Logger;
  /** Between two DescribeInstances rounds. Default 500 ms. */
  readonly pollMs?: number;
  /** SIGTERM to SIGKILL when a machine is stopped. Default 5 s. */
  readonly stopGraceMs?: number;
  /** Where the sandboxes go. Default the OS temp dir. */
  readonly tmpDir?: string;
  /** EC2 client; default one for endpoint, region and credentials. */
  readonly ec2?: EC2Client;
  readonly onEvent?: (event: Ec2BridgeEvent) => void;
}

/** Why a bridged machine ended. */
export type EndReason =
  /** The user data ran the shutdown stub. */
  | 'shutdown'
  /** The user data exited without asking for a shutdown. */
  | 'exit'
  /** interrupt(): a spot interruption. */
  | 'interrupted'
  /** Someone else (runner-fleet) terminated or stopped the instance, or it disappeared. */
  | 'external'
  /** bridge.stop(). */
  | 'bridge-stopped'
  /** The bridge could not start it (no user data does not count: such a machine idles). */
  | 'failed-to-start';

export type Ec2BridgeEvent =
  | { readonly type: 'started'; readonly instanceId: string }
  | { readonly type: 'no-user-data'; readonly instanceId: string }
  | { readonly type: 'shutdown-requested'; readonly instanceId: string }
  | {
      readonly type: 'exited';
      readonly instanceId: string;
      readonly code: number | null;
      readonly signal: string | null;
    }
  | { readonly type: 'interruption-notice'; readonly instanceId: string; readonly at: Date }
  | {
      readonly type: 'ended';
      readonly instanceId: string;
      readonly reason: EndReason;
      /** What the bridge did in moto: terminated, stopped, or nothing (ended externally, or the bridge stopped). */
      readonly action: 'terminated' | 'stopped' | 'none';
    };

export interface Ec2BridgeStats {
  /** Machines whose user data started. */
  started: number;
  /** Machines that ran the shutdown stub. */
  shutdowns: number;
  /** Instances the bridge terminated or stopped in moto after their machine ended. */
  terminated: number;
  stopped: number;
  /** Machines stopped because their instance was terminated or stopped by someone else. */
  stoppedExternally: number;
  interrupted: number;
  /** Failed EC2 calls (polls, attribute reads, state changes). */
  errors: number;
}

export interface Ec2BridgeInstance {
  readonly instanceId: string;
  readonly phase: 'starting' | 'running' | 'ending' | 'ended';
  readonly reason?: EndReason;
  readonly exitCode?: number | null;
}

export interface Ec2Bridge {
  readonly stats: Readonly<Ec2BridgeStats>;
  /** Every machine the bridge has hosted. */
  instances(): Ec2BridgeInstance[];
  /** stdout and stderr of the machine's user data (and everything it ran), so far. */
  output(instanceId: string): string;
  /** The machine's IMDS stand-in (http://127.0.0.1:PORT) while it runs. */
  imdsUrl(instanceId: string): string | undefined;
  /** The run.sh / config.sh calls of the machine, one line each with its arguments. */
  calls(instanceId: string): Promise<string[]>;
  /** Spot interruption: the notice in IMDS now, the machine gone and the instance terminated after noticeMs. */
  interrupt(instanceId: string, options?: { noticeMs?: number }): Promise<void>;
  /** Stops every machine (SIGTERM, then SIGKILL), removes every sandbox, stops polling. moto is left as it is. */
  stop(): Promise<void>;
}

/**
 * Whether a process of the group still runs. Read from /proc, not kill(-pgid, 0): orphans whose parent does not reap
 * them (a container's init may not) stay zombies in the group, and a zombie runs nothing.
 */
export function groupAlive(pgid: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return false;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[2] === String(pgid) && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

const STANDARD_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const OUTPUT_LIMIT = 1_000_000;

/** `node <repo>/dist/cli/main.js emulate-runner`, from the build next to this file or the repository's dist/. */
export function defaultRunnerCommand(): string[] {
  const candidates = [
    new URL('../../cli/main.js', import.meta.url),
    new URL('../../../dist/cli/main.js', import.meta.url),
  ];
  const main = candidates
    .map((url) => fileURLToPath(url))
    .find((path) => path.endsWith('.js') && existsSync(path));
  if (main === undefined) {
    throw new Error(
      'ec2-bridge: no dist/cli/main.js for the runner emulator; run `npm run build` or pass runnerCommand',
    );
  }
  return [process.execPath, main, 'emulate-runner'];
}

interface Hosted {
  readonly instanceId: string;
  phase: Ec2BridgeInstance['phase'];
  reason?: EndReason;
  exitCode?: number | null;
  output: string;
  sandbox?: Sandbox;
  imds?: ImdsServer;
  child?: ChildProcess;
  exited?: Promise<void>;
  shutdownBehavior: 'stop' | 'terminate';
  /** Set once: the machine's end runs one time, whoever notices first. */
  ending?: Promise<void>;
}

export async function startEc2Bridge(options: Ec2BridgeOptions): Promise<Ec2Bridge> {
  const runnerCommand = options.runnerCommand ?? defaultRunnerCommand();
  const ec2 =
    options.ec2 ??
    new EC2Client({ endpoint: options.endpoint, region: options.region, credentials: options.credentials });
  const log = options.logger;
  const pollMs = options.pollMs ?? 500;
  const graceMs = options.stopGraceMs ?? 5_000;
  const tmp = options.tmpDir ?? tmpdir();
  const stopping = new AbortController();
  const hosted = new Map<string, Hosted>();
  /** Instance id -> launch template of the instant fleet that launched it (see templateOf). */
  const fleetTemplates = new Map<string, { id: string; version?: string }>();
  const starting = new Set<Promise<void>>();
  const stats: Ec2BridgeStats = {
    started: 0,
    shutdowns: 0,
    terminated: 0,
    stopped: 0,
    stoppedExternally: 0,
    interrupted: 0,
    errors: 0,
  };
  const emit = (event: Ec2BridgeEvent) => options.onEvent?.(event);
  const filters = [
    options.fleet === undefined
      ? { Name: 'tag-key', Values: [TAG_FLEET] }
      : { Name: `tag:${TAG_FLEET}`, Values: [options.fleet] },
  ];

  async function userDataOf(instance: Ec2Instance): Promise<string | undefined> {
    const id = instance.InstanceId!;
    const attribute = await ec2.send(
      new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'userData' }),
    );
    const encoded = attribute.UserData?.Value;
    if (encoded) return Buffer.from(encoded, 'base64').toString('utf8');
    // EC2 reports a launch template's user data as the instance's; a stand-in that does not still tags the instance
    // with the template it came from.
    const template = await templateData(instance);
    return template?.UserData ? Buffer.from(template.UserData, 'base64').toString('utf8') : undefined;
  }

  /**
   * The launch template (id and version) an instance came from. EC2 tags every such instance with
   * aws:ec2launchtemplate:id and :version; moto does so for RunInstances but not for CreateFleet, whose instances
   * are found in the instant fleet that launched them (DescribeFleets lists their template and version).
   */
  async function templateOf(instance: Ec2Instance): Promise<{ id: string; version?: string } | undefined> {
    const tag = (key: string) => instance.Tags?.find((t) => t.Key === key)?.Value;
    const tagged = tag('aws:ec2launchtemplate:id');
    if (tagged !== undefined) {
      const version = tag('aws:ec2launchtemplate:version');
      return { id: tagged, ...(version !== undefined ? { version } : {}) };
    }
    const id = instance.InstanceId;
    if (id === undefined) return undefined;
    let found = fleetTemplates.get(id);
    if (found === undefined) {
      for await (const page of paginateDescribeFleets({ client: ec2 }, {})) {
        for (const fleet of page.Fleets ?? []) {
          for (const launched of fleet.Instances ?? []) {
            const spec = launched.LaunchTemplateAndOverrides?.LaunchTemplateSpecification;
            if (spec?.LaunchTemplateId === undefined) continue;
            for (const instanceId of launched.InstanceIds ?? []) {
              fleetTemplates.set(instanceId, {
                id: spec.LaunchTemplateId,
                ...(spec.Version !== undefined ? { version: spec.Version } : {}),
              });
            }
          }
        }
      }
      found = fleetTemplates.get(id);
    }
    return found;
  }

  async function templateData(instance: Ec2Instance) {
    const template = await templateOf(instance);
    if (template === undefined) return undefined;
    const versions = await ec2.send(
      new DescribeLaunchTemplateVersionsCommand({
        LaunchTemplateId: template.id,
        ...(template.version !== undefined ? { Versions: [template.version] } : {}),
      }),
    );
    return versions.LaunchTemplateVersions?.[0]?.LaunchTemplateData;
  }

  /** The instance's InstanceInitiatedShutdownBehavior; its launch template's when it came from one that sets it. */
  async function shutdownBehaviorOf(instance: Ec2Instance): Promise<'stop' | 'terminate'> {
    try {
      const fromTemplate = (await templateData(instance))?.InstanceInitiatedShutdownBehavior;
      if (fromTemplate === 'stop' || fromTemplate === 'terminate') return fromTemplate;
      const attribute = await ec2.send(
        new DescribeInstanceAttributeCommand({
          InstanceId: instance.InstanceId!,
          Attribute: 'instanceInitiatedShutdownBehavior',
        }),
      );
      return attribute.InstanceInitiatedShutdownBehavior?.Value === 'stop' ? 'stop' : 'terminate';
    } catch (error) {
      stats.errors++;
      log?.warn(
        { instanceId: instance.InstanceId, err: error },
        'ec2-bridge: no shutdown behaviour; terminate',
      );
      return 'terminate';
    }
  }

  /** Stops the machine's processes: its whole process group, SIGTERM then SIGKILL (or SIGKILL at once). */
  async function killMachine(h: Hosted, hard: boolean): Promise<void> {
    const pid = h.child?.pid;
    if (pid === undefined) return;
    // Nothing left running: signal nobody (the group's id may belong to someone else by now).
    if (!groupAlive(pid)) return h.exited;
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(-pid, name);
      } catch {
        // the group is gone
      }
    };
    if (!hard) {
      signal('SIGTERM');
      const deadline = Date.now() + graceMs;
      while (groupAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    }
    if (groupAlive(pid)) signal('SIGKILL');
    await h.exited;
  }

  async function cleanup(h: Hosted): Promise<void> {
    await h.imds?.close();
    if (h.sandbox !== undefined) await rm(h.sandbox.dir, { recursive: true, force: true });
  }

  /** Ends a machine once: stops its processes, then (for its own shutdown or exit) applies the shutdown behaviour. */
  function end(h: Hosted, reason: EndReason, hard = false): Promise<void> {
    if (h.ending !== undefined) return h.ending;
    h.phase = 'ending';
    h.reason = reason;
    if (reason === 'shutdown') {
      stats.shutdowns++;
      emit({ type: 'shutdown-requested', instanceId: h.instanceId });
    }
    h.ending = (async () => {
      await killMachine(h, hard);
      let action: 'terminated' | 'stopped' | 'none' = 'none';
      if (reason === 'shutdown' || reason === 'exit' || reason === 'interrupted') {
        const stop = reason !== 'interrupted' && h.shutdownBehavior === 'stop';
        try {
          if (stop) await ec2.send(new StopInstancesCommand({ InstanceIds: [h.instanceId] }));
          else await ec2.send(new TerminateInstancesCommand({ InstanceIds: [h.instanceId] }));
          action = stop ? 'stopped' : 'terminated';
          if (stop) stats.stopped++;
          else stats.terminated++;
        } catch (error) {
          stats.errors++;
          log?.warn(
            { instanceId: h.instanceId, err: error },
            'ec2-bridge: ending the instance in EC2 failed',
          );
        }
      }
      if (reason === 'external') stats.stoppedExternally++;
      if (reason === 'interrupted') stats.interrupted++;
      await cleanup(h);
      h.phase = 'ended';
      log?.debug({ instanceId: h.instanceId, reason, action }, 'ec2-bridge: machine ended');
      emit({ type: 'ended', instanceId: h.instanceId, reason, action });
    })();
    return h.ending;
  }

  async function host(h: Hosted, instance: Ec2Instance): Promise<void> {
    const id = h.instanceId;
    let userData: string | undefined;
    try {
      userData = await userDataOf(instance);
      h.shutdownBehavior = await shutdownBehaviorOf(instance);
    } catch (error) {
      stats.errors++;
      log?.warn({ instanceId: id, err: error }, 'ec2-bridge: reading the instance failed; trying again');
      hosted.delete(id);
      return;
    }
    if (stopping.signal.aborted) return;
    if (userData === undefined || userData === '') {
      // A machine without user data boots and idles: nothing to run.
      h.phase = 'running';
      emit({ type: 'no-user-data', instanceId: id });
      return;
    }
    try {
      h.sandbox = await createSandbox(tmp, id, userData, runnerCommand);
      h.imds = await startImds({
        instanceId: id,
        region: options.region,
        ...(instance.Placement?.AvailabilityZone
          ? { availabilityZone: instance.Placement.AvailabilityZone }
          : {}),
        userData,
        role: { name: 'runner-fleet-ec2-bridge', ...options.credentials },
      });
    } catch (error) {
      log?.warn({ instanceId: id, err: error }, 'ec2-bridge: preparing the machine failed');
      h.phase = 'ended';
      h.reason = 'failed-to-start';
      await cleanup(h);
      return;
    }
    if (stopping.signal.aborted) {
      h.phase = 'ended';
      h.reason = 'bridge-stopped';
      await cleanup(h);
      return;
    }
    const box = h.sandbox;
    const env: Record<string, string> = {
      PATH: [box.bin, ...(options.path ?? []), ...STANDARD_PATH].join(':'),
      HOME: box.home,
      TMPDIR: box.tmp,
      LANG: 'C.UTF-8',
      AWS_ENDPOINT_URL: options.endpoint,
      AWS_EC2_METADATA_SERVICE_ENDPOINT: h.imds.url,
      // A loaded test machine answers slower than EC2's IMDS: the SDKs' 1 s default is too tight.
      AWS_METADATA_SERVICE_TIMEOUT: '5',
      AWS_METADATA_SERVICE_NUM_ATTEMPTS: '3',
      RUNNER_FLEET_IMDS_ENDPOINT: h.imds.url,
      RUNNER_FLEET_RUNNER_DIR: box.runner,
      RUNNER_FLEET_SYSLOG: 'false',
      ...options.env,
    };
    const child = spawn('bash', [box.userData], {
      cwd: box.dir,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    h.child = child;
    const keep = (chunk: Buffer) => {
      if (h.output.length < OUTPUT_LIMIT) h.output += chunk.toString('utf8');
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    h.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        h.exitCode = code;
        emit({ type: 'exited', instanceId: id, code, signal });
        resolve();
        // A real machine may idle on after its user data; this one ends, as it asked to (shutdown) or because
        // nothing is left to run on it.
        void end(h, existsSync(box.shutdownMarker) ? 'shutdown' : 'exit');
      });
      child.once('error', (error) => {
        log?.warn({ instanceId: id, err: error }, 'ec2-bridge: bash did not start');
        h.exitCode = null;
        resolve();
        void end(h, 'exit');
      });
    });
    h.phase = 'running';
    stats.started++;
    log?.debug({ instanceId: id }, 'ec2-bridge: machine started');
    emit({ type: 'started', instanceId: id });
  }

  async function poll(): Promise<void> {
    const seen = new Map<string, Ec2Instance>();
    for await (const page of paginateDescribeInstances({ client: ec2 }, { Filters: filters })) {
      for (const reservation of page.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) {
          if (instance.InstanceId !== undefined) seen.set(instance.InstanceId, instance);
        }
      }
    }
    for (const [id, instance] of seen) {
      const state = instance.State?.Name;
      if (state !== 'running' || hosted.has(id) || stopping.signal.aborted) continue;
      const h: Hosted = { instanceId: id, phase: 'starting', output: '', shutdownBehavior: 'terminate' };
      hosted.set(id, h);
      const task = host(h, instance).finally(() => starting.delete(task));
      starting.add(task);
    }
    for (const h of hosted.values()) {
      if (h.phase !== 'running') continue;
      const state = seen.get(h.instanceId)?.State?.Name;
      if (state !== 'running' && state !== 'pending') {
        log?.debug(
          { instanceId: h.instanceId, state },
          'ec2-bridge: instance ended outside; stopping its machine',
        );
        void end(h, 'external');
      } else if (h.sandbox !== undefined && h.child !== undefined && existsSync(h.sandbox.shutdownMarker)) {
        void end(h, 'shutdown');
      }
    }
  }

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        await poll();
      } catch (error) {
        if (stopping.signal.aborted) break;
        stats.errors++;
        log?.warn({ err: error }, 'ec2-bridge: DescribeInstances failed');
      }
      await sleepUnlessAborted(pollMs, stopping.signal);
    }
  })();

  return {
    stats,
    instances() {
      return [...hosted.values()].map((h) => ({
        instanceId: h.instanceId,
        phase: h.phase,
        ...(h.reason !== undefined ? { reason: h.reason } : {}),
        ...(h.exitCode !== undefined ? { exitCode: h.exitCode } : {}),
      }));
    },
    output(instanceId) {
      return hosted.get(instanceId)?.output ?? '';
    },
    imdsUrl(instanceId) {
      const h = hosted.get(instanceId);
      return h?.phase === 'running' ? h.imds?.url : undefined;
    },
    async calls(instanceId) {
      const box = hosted.get(instanceId)?.sandbox;
      if (box === undefined || !existsSync(box.calls)) return [];
      return (await readFile(box.calls, 'utf8')).split('\n').filter((line) => line !== '');
    },
    async interrupt(instanceId, interruptOptions = {}) {
      const h = hosted.get(instanceId);
      if (h === undefined || h.phase !== 'running' || h.imds === undefined) {
        throw new Error(`ec2-bridge: instance ${instanceId} has no running machine here`);
      }
      const noticeMs = interruptOptions.noticeMs ?? 120_000;
      const at = new Date(Date.now() + noticeMs);
      h.imds.scheduleInterruption(at);
      emit({ type: 'interruption-notice', instanceId, at });
      await sleepUnlessAborted(noticeMs, stopping.signal);
      if (stopping.signal.aborted || h.ending !== undefined) return;
      // The machine vanishes: no SIGTERM, no time to deregister.
      await end(h, 'interrupted', true);
    },
    async stop() {
      stopping.abort();
      await loop;
      await Promise.allSettled([...starting]);
      await Promise.all(
        [...hosted.values()].map((h) => (h.phase === 'ended' ? h.ending : end(h, 'bridge-stopped'))),
      );
      if (options.ec2 === undefined) ec2.destroy();
    },
  };
}
