/**
 * A fleet of ec2 scale sets against the GitHub simulator and moto, as the EC2 end-to-end suite and the ec2
 * benchmark run it: the fleet.yaml (credentials read from 0600 files, providers pointed at moto), the environment
 * that gives `runner-fleet start` moto's credentials and nothing else, the EC2 bridge playing the machines, and a
 * census of what of the fleet exists in moto (instances by scale set and state, runner parameters).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EC2Client, Instance } from '@aws-sdk/client-ec2';
import { paginateDescribeInstances } from '@aws-sdk/client-ec2';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { paginateGetParametersByPath } from '@aws-sdk/client-ssm';
import { stringify } from 'yaml';
import { TAG_FLEET, TAG_SCALE_SET } from '../../src/aws/tags.js';
import { startEc2Bridge } from '../../src/sim/ec2-bridge/index.js';
import type { Ec2Bridge, Ec2BridgeEvent } from '../../src/sim/ec2-bridge/index.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { emulatorCommand } from './ec2-machines.js';
import { MOTO_CREDENTIALS, awsPeersBin } from './moto.js';
import type { MotoServer } from './moto.js';
import { simulatorCredentials } from './sim-fleet.js';

export const EC2_REGION = 'eu-west-1';

/** One ec2 scale set of the fleet: its fleet.yaml fields, `provider` without `kind` and `region`. */
export interface Ec2SetShape {
  readonly name: string;
  readonly scope: { readonly org: string } | { readonly repo: string };
  readonly labels: readonly string[];
  readonly max: number;
  readonly minIdle: number;
  readonly ephemeral: boolean;
  readonly registration: 'jit' | 'token';
  readonly provider: Readonly<Record<string, unknown>>;
}

export interface Ec2FleetFiles {
  readonly dir: string;
  readonly configPath: string;
  readonly storePath: string;
  readonly sets: readonly Ec2SetShape[];
}

/**
 * Writes fleet.yaml (and the App key and webhook secret beside it) into a fresh temporary directory. Each set's
 * provider gets `kind: ec2`, the region and, unless `endpoint` is undefined (the controller is given
 * `--aws-endpoint` instead), `endpoint`.
 */
export function writeEc2FleetConfig(
  sim: Simulator,
  options: {
    readonly fleet: string;
    readonly port: number;
    readonly endpoint: string | undefined;
    readonly sets: readonly Ec2SetShape[];
    readonly resyncInterval?: string;
    readonly orphanGracePeriod?: string;
    readonly bootstrapTimeout?: string;
    readonly idleTimeout?: string;
  },
): Ec2FleetFiles {
  const dir = mkdtempSync(join(tmpdir(), 'runner-fleet-ec2-'));
  const storePath = join(dir, 'fleet.db');
  const doc = {
    name: options.fleet,
    ...simulatorCredentials(sim, dir),
    server: { host: '127.0.0.1', port: options.port },
    store: { path: storePath },
    controller: {
      resyncInterval: options.resyncInterval ?? '3s',
      orphanGracePeriod: options.orphanGracePeriod ?? '20s',
      failureBackoff: '1s',
    },
    scaleSets: options.sets.map((set) => ({
      name: set.name,
      scope: set.scope,
      labels: set.labels,
      minIdle: set.minIdle,
      max: set.max,
      ephemeral: set.ephemeral,
      registration: set.registration,
      bootstrapTimeout: options.bootstrapTimeout ?? '120s',
      idleTimeout: options.idleTimeout ?? '3s',
      provider: {
        kind: 'ec2',
        region: EC2_REGION,
        ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
        ...set.provider,
      },
    })),
  };
  const configPath = join(dir, 'fleet.yaml');
  writeFileSync(configPath, stringify(doc));
  return { dir, configPath, storePath, sets: options.sets };
}

/** The environment of a `runner-fleet start` child process for an ec2 fleet in moto: moto's credentials, no IMDS. */
export function controllerAwsEnv(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

export interface FleetBridge {
  readonly bridge: Ec2Bridge;
  readonly events: Ec2BridgeEvent[];
  /** Every machine's output (user data, start script, runner), by instance id. */
  outputs(): Map<string, string>;
}

/** The EC2 bridge for the fleet's instances: the emulator as the runner, the test peers' AWS CLI on PATH. */
export async function startFleetBridge(
  moto: MotoServer,
  fleet: string,
  options: { readonly tmpDir?: string; readonly env?: Record<string, string> } = {},
): Promise<FleetBridge> {
  const events: Ec2BridgeEvent[] = [];
  const bridge = await startEc2Bridge({
    endpoint: moto.url,
    region: EC2_REGION,
    credentials: MOTO_CREDENTIALS,
    fleet,
    runnerCommand: emulatorCommand(),
    path: [awsPeersBin()!],
    pollMs: 250,
    stopGraceMs: 3_000,
    ...(options.tmpDir !== undefined ? { tmpDir: options.tmpDir } : {}),
    env: {
      // A runner orphaned by a failed test gives up on a vanished simulator within seconds.
      RUNNER_FLEET_EMULATOR_RETRY_MS: '10000',
      RUNNER_FLEET_PARAMETER_POLL_MAX: '2',
      ...options.env,
    },
    onEvent: (event) => events.push(event),
  });
  return {
    bridge,
    events,
    outputs: () => new Map(bridge.instances().map((i) => [i.instanceId, bridge.output(i.instanceId)])),
  };
}

export interface Ec2Census {
  /** Every instance of the fleet moto knows (terminated ones included). */
  readonly instances: readonly Instance[];
  /** Pending or running instances by scale set. */
  readonly live: ReadonlyMap<string, number>;
  readonly liveIds: readonly string[];
  /** Runner parameters under the prefixes. */
  readonly parameters: readonly string[];
}

/** What of the fleet exists in moto now. */
export async function ec2Census(
  clients: { readonly ec2: EC2Client; readonly ssm?: SSMClient },
  fleet: string,
  prefixes: readonly string[] = [],
): Promise<Ec2Census> {
  const instances: Instance[] = [];
  for await (const page of paginateDescribeInstances(
    { client: clients.ec2 },
    { Filters: [{ Name: `tag:${TAG_FLEET}`, Values: [fleet] }] },
  )) {
    for (const r of page.Reservations ?? []) instances.push(...(r.Instances ?? []));
  }
  const live = new Map<string, number>();
  const liveIds: string[] = [];
  for (const i of instances) {
    if (i.State?.Name !== 'pending' && i.State?.Name !== 'running') continue;
    const set = i.Tags?.find((t) => t.Key === TAG_SCALE_SET)?.Value ?? '?';
    live.set(set, (live.get(set) ?? 0) + 1);
    liveIds.push(i.InstanceId!);
  }
  const parameters: string[] = [];
  if (clients.ssm !== undefined) {
    for (const prefix of prefixes) {
      for await (const page of paginateGetParametersByPath(
        { client: clients.ssm },
        { Path: prefix, Recursive: true },
      )) {
        for (const p of page.Parameters ?? []) parameters.push(p.Name!);
      }
    }
  }
  return { instances, live, liveIds, parameters };
}
