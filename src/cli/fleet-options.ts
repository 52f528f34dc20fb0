/**
 * What `start` and `doctor` share: the flags that name a fleet.yaml, its cluster, its AWS endpoint and the
 * leader-election Lease, and
 * loading that fleet.yaml, so both refuse a bad file the same way (every problem as FILE:LINE:COL, exit status 2).
 */
import type { ParseArgsConfig } from 'node:util';
import { parseArgs } from 'node:util';
import { formatProblem, loadConfig } from '../config/index.js';
import type { FleetConfig } from '../core/fleet-config.js';
import type { CommandIo } from './command.js';
import { UsageError } from './command.js';

type Options = NonNullable<ParseArgsConfig['options']>;

const FLEET_OPTIONS = {
  config: { type: 'string' },
  kubeconfig: { type: 'string' },
  'aws-endpoint': { type: 'string' },
  'leader-election': { type: 'boolean' },
  'lease-name': { type: 'string' },
  'lease-namespace': { type: 'string' },
} as const satisfies Options;

export interface FleetFlags {
  readonly config: string;
  readonly kubeconfig?: string;
  /** Endpoint of every AWS call of the ec2 scale sets (a local moto server in tests). */
  readonly awsEndpoint?: string;
  readonly leaderElection?: boolean;
  readonly leaseName?: string;
  readonly leaseNamespace?: string;
}

/**
 * Parses `argv` with the fleet flags plus the command's own string options `extra`. `--config` is required;
 * anything unknown or malformed is a UsageError.
 */
export function parseFleetArgs<K extends string>(
  argv: string[],
  extra: Readonly<Record<K, { readonly type: 'string' }>>,
): { flags: FleetFlags; extra: Partial<Record<K, string>> } {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...FLEET_OPTIONS, ...extra }, strict: true }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const text = (name: string) => values[name] as string | undefined;
  const config = text('config');
  if (!config) throw new UsageError('--config is required');
  const kubeconfig = text('kubeconfig');
  const awsEndpoint = text('aws-endpoint');
  if (awsEndpoint !== undefined && !isHttpUrl(awsEndpoint)) {
    throw new UsageError(`--aws-endpoint must be an http(s) URL, not ${JSON.stringify(awsEndpoint)}`);
  }
  const leaderElection = values['leader-election'] as boolean | undefined;
  const leaseName = text('lease-name');
  const leaseNamespace = text('lease-namespace');
  const own: Partial<Record<K, string>> = {};
  for (const name of Object.keys(extra) as K[]) {
    const value = text(name);
    if (value !== undefined) own[name] = value;
  }
  return {
    flags: {
      config,
      ...(kubeconfig !== undefined ? { kubeconfig } : {}),
      ...(awsEndpoint !== undefined ? { awsEndpoint } : {}),
      ...(leaderElection !== undefined ? { leaderElection } : {}),
      ...(leaseName !== undefined ? { leaseName } : {}),
      ...(leaseNamespace !== undefined ? { leaseNamespace } : {}),
    },
    extra: own,
  };
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * Loads the fleet.yaml. Its warnings go to stderr as `validate` prints them (`warning: FILE:LINE:COL PATH:
 * MESSAGE`). When it has problems, writes each to stderr (FILE:LINE:COL PATH: MESSAGE), then
 * `runner-fleet <command>: N problem(s) in FILE`, and returns exit status 2.
 */
export function loadFleetConfig(command: string, file: string, io: CommandIo): FleetConfig | 2 {
  const loaded = loadConfig(file, { env: io.env });
  if (loaded.ok) {
    for (const warning of loaded.warnings) io.stderr.write(`warning: ${formatProblem(warning)}\n`);
    return loaded.config;
  }
  for (const problem of loaded.problems) io.stderr.write(`${formatProblem(problem)}\n`);
  io.stderr.write(`runner-fleet ${command}: ${loaded.problems.length} problem(s) in ${file}\n`);
  return 2;
}
