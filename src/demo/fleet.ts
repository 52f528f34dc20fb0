/**
 * The demo's fleet.yaml: the built-in four scale sets, or the user's own file (`--config`) pointed at the
 * simulator. Either way the result goes through the normal config loader (`parseConfig`), so the demo runs exactly
 * what `runner-fleet start` would run; secrets enter through `${env:...}` references resolved from a private map,
 * never from the process environment and never written to disk.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { loadConfig, parseConfig } from '../config/index.js';
import type { FleetConfig, Problem } from '../config/index.js';
import { LabelRouter } from '../core/labels.js';
import type { WorkloadTarget } from './workload.js';

/** What the demo knows of the simulator it started. */
export interface DemoSimulatorInfo {
  readonly baseUrl: string;
  readonly apiUrl: string;
  readonly appId: number;
  /** Secret. */
  readonly privateKeyPem: string;
  /** Secret (a classic PAT the simulator accepts; used when a scale set has enterprise scope). */
  readonly token: string;
  /** Secret. */
  readonly webhookSecret: string;
}

export interface DemoPaths {
  /** The demo's temporary directory (store, runner work directories, logs). */
  readonly dir: string;
  /** Node binary that runs emulated runners. */
  readonly nodePath: string;
  /** dist/cli/main.js, whose `emulate-runner` command stands in for actions/runner. */
  readonly cliPath: string;
}

type Raw = Record<string, unknown>;

/** The built-in scale sets: ephemeral JIT runners as local processes and as simulated-cloud instances (one set of
 * these over the scale set message queue instead of webhooks), and a persistent token-mode set. The process set stays small: each of its runners is a real node process (~40 MB). */
export const DEFAULT_SCALE_SETS: readonly Raw[] = [
  {
    name: 'linux-process',
    scope: { org: 'octo-org' },
    labels: ['linux', 'x64', 'process'],
    minIdle: 0,
    max: 8,
    ephemeral: true,
    registration: 'jit',
    bootstrapTimeout: '60s',
    idleTimeout: '5s',
    provider: { kind: 'process' },
  },
  {
    name: 'linux-cloud',
    scope: { org: 'octo-org' },
    labels: ['linux', 'x64', 'cloud'],
    minIdle: 0,
    max: 60,
    ephemeral: true,
    registration: 'jit',
    bootstrapTimeout: '60s',
    idleTimeout: '5s',
    provider: { kind: 'sim', bootDelay: '300ms' },
  },
  {
    // Learns of its jobs from GitHub's runner scale set message queue instead of webhooks.
    name: 'linux-listener',
    scope: { org: 'octo-org' },
    labels: ['linux', 'x64', 'listener'],
    discovery: 'scale-set',
    minIdle: 0,
    max: 16,
    ephemeral: true,
    registration: 'jit',
    bootstrapTimeout: '60s',
    idleTimeout: '5s',
    provider: { kind: 'sim', bootDelay: '300ms' },
  },
  {
    name: 'app-persistent',
    scope: { repo: 'octo-org/app' },
    labels: ['linux', 'x64', 'persistent'],
    minIdle: 1,
    max: 4,
    ephemeral: false,
    registration: 'token',
    bootstrapTimeout: '60s',
    idleTimeout: '5s',
    provider: { kind: 'sim', bootDelay: '200ms' },
  },
];

/**
 * The built-in scale sets of `demo --provider kubernetes`: ephemeral JIT runners as pods in `namespace`, one set of
 * small runners and one of large ones (the pod template asks for more CPU and memory).
 */
export function kubernetesScaleSets(namespace: string): Raw[] {
  const set = (name: string, labels: string[], max: number, template?: Raw): Raw => ({
    name,
    scope: { org: 'octo-org' },
    labels,
    minIdle: 0,
    max,
    ephemeral: true,
    registration: 'jit',
    bootstrapTimeout: '90s',
    idleTimeout: '5s',
    provider: { kind: 'kubernetes', namespace, ...(template ? { template } : {}) },
  });
  return [
    set('k8s-linux', ['linux', 'x64', 'k8s'], 20),
    set('k8s-large', ['linux', 'x64', 'k8s-large'], 8, {
      spec: { containers: [{ name: 'runner', resources: { requests: { cpu: '2', memory: '4Gi' } } }] },
    }),
  ];
}

/**
 * What `demo --provider ec2` created in the AWS endpoint (moto) for the fleet's instances: ids of the AMI, subnets
 * and security group it found there, the instance profile it created, and one launch template per SSM prefix of the
 * fleet (the template's user data reads the runner parameters under that prefix).
 */
export interface DemoEc2World {
  readonly region: string;
  readonly imageId: string;
  /** The default VPC's subnets, at least two. */
  readonly subnetIds: readonly string[];
  readonly securityGroupId: string;
  readonly instanceProfile: string;
  /** Launch template name by SSM prefix (`/runner-fleet/demo`). */
  readonly launchTemplates: Readonly<Record<string, string>>;
}

/** The SSM prefix of an ec2 provider block of fleet `fleet` (its `ssm.pathPrefix`, else the default). */
export function demoEc2Prefix(provider: Raw, fleet: string): string {
  const ssm = (provider.ssm ?? {}) as Raw;
  const prefix = typeof ssm.pathPrefix === 'string' ? ssm.pathPrefix : `/runner-fleet/${fleet}`;
  return prefix.replace(/\/+$/, '');
}

/**
 * The built-in scale sets of `demo --provider ec2`: ephemeral JIT runners on spot instances launched from a launch
 * template over several instance types and subnets (CreateFleet, on-demand failover), and persistent token-mode
 * runners on on-demand instances launched from the AMI (RunInstances with the default user data). minIdle is 0 in
 * both, so nothing of the fleet is left running when the demo ends.
 */
export function ec2ScaleSets(world: DemoEc2World, fleet = 'demo'): Raw[] {
  const template = world.launchTemplates[`/runner-fleet/${fleet}`];
  if (template === undefined) throw new Error(`no demo launch template for /runner-fleet/${fleet}`);
  const common = { minIdle: 0, bootstrapTimeout: '90s', idleTimeout: '5s' };
  return [
    {
      name: 'ec2-spot',
      scope: { org: 'octo-org' },
      labels: ['linux', 'x64', 'ec2'],
      max: 12,
      ephemeral: true,
      registration: 'jit',
      ...common,
      provider: {
        kind: 'ec2',
        region: world.region,
        launchTemplate: { name: template },
        instanceTypes: ['t3.micro', 't3a.micro', 't3.small'],
        subnetIds: world.subnetIds.slice(0, 2),
        capacity: 'spot',
        allocationStrategy: 'price-capacity-optimized',
        tags: { team: 'demo' },
      },
    },
    {
      name: 'ec2-persistent',
      scope: { repo: 'octo-org/app' },
      labels: ['linux', 'x64', 'ec2-persistent'],
      max: 3,
      ephemeral: false,
      registration: 'token',
      ...common,
      provider: {
        kind: 'ec2',
        region: world.region,
        imageId: world.imageId,
        instanceProfile: world.instanceProfile,
        instanceTypes: ['t3.micro'],
        subnetIds: [world.subnetIds[0]],
        securityGroupIds: [world.securityGroupId],
        tags: { team: 'demo' },
      },
    },
  ];
}

/**
 * A user's ec2 block pointed at the demo's world: its launch settings (AMI, launch template, instance profile,
 * subnets, security groups, region, KMS key) replaced by what the demo created in the endpoint, the rest (capacity,
 * instance types, allocation, failover, tags, SSM prefix, user data settings) kept.
 */
function demoEc2Block(name: string, provider: Raw, world: DemoEc2World, fleet: string, notes: string[]): Raw {
  const prefix = demoEc2Prefix(provider, fleet);
  const template = world.launchTemplates[prefix];
  const out: Raw = { ...provider, region: world.region };
  delete out.endpoint;
  for (const key of ['launchTemplate', 'imageId', 'instanceProfile', 'securityGroupIds'] as const)
    delete out[key];
  if (provider.launchTemplate !== undefined) {
    if (template === undefined) throw new Error(`no demo launch template for ${prefix}`);
    out.launchTemplate = { name: template };
  } else {
    out.imageId = world.imageId;
    out.instanceProfile = world.instanceProfile;
    out.securityGroupIds = [world.securityGroupId];
  }
  const subnets = Array.isArray(provider.subnetIds) ? provider.subnetIds.length : 0;
  if (subnets > 0) out.subnetIds = world.subnetIds.slice(0, Math.min(subnets, world.subnetIds.length));
  const ssm = (provider.ssm ?? {}) as Raw;
  if (ssm.kmsKeyId !== undefined) {
    const { kmsKeyId: _dropped, ...rest } = ssm;
    out.ssm = rest;
  }
  const moved = provider.region !== undefined && provider.region !== world.region;
  notes.push(
    `${name}: launches from the demo's ${provider.launchTemplate !== undefined ? 'launch template' : 'AMI'}, ` +
      `subnets and instance profile in the AWS endpoint${moved ? ` (region ${world.region})` : ''}` +
      `${ssm.kmsKeyId !== undefined ? '; SSM default key instead of kmsKeyId' : ''}`,
  );
  return out;
}

/** Labels of the one job no scale set serves (made longer if a user's scale set happens to serve them). */
const UNROUTABLE_LABELS = ['self-hosted', 'linux', 'arm64', 'gpu'];

/** Caps that keep a demo of a production config to minutes (an idle timeout of 15m would hold the drain). */
const DEMO_CAPS = { idleTimeoutMs: 10_000, bootstrapTimeoutMs: 120_000 } as const;

const SECRET_ENV = {
  appKey: 'RUNNER_FLEET_DEMO_APP_KEY',
  token: 'RUNNER_FLEET_DEMO_TOKEN',
  webhookSecret: 'RUNNER_FLEET_DEMO_WEBHOOK_SECRET',
} as const;

/** Sections the demo replaces; problems in them are not the user's concern during a demo. */
const REPLACED_SECTIONS = ['github', 'webhook', 'server', 'store'];

export interface UserFleet {
  readonly name: string | undefined;
  readonly controller: Raw | undefined;
  readonly scaleSets: readonly Raw[];
}

export class DemoConfigError extends Error {
  override readonly name = 'DemoConfigError';
  readonly code = 'invalid_demo_config';
  readonly problems: readonly Problem[];
  constructor(message: string, problems: readonly Problem[]) {
    super(message);
    this.problems = problems;
  }
}

/**
 * Reads the user's fleet.yaml for a demo. Problems in its scale sets are reported with their real line and column;
 * the github, webhook, server and store sections are replaced, so their problems (say, an unset GITHUB_TOKEN) are
 * ignored.
 */
export function readUserFleet(path: string, env: Readonly<Record<string, string | undefined>>): UserFleet {
  const loaded = loadConfig(path, { env });
  const problems = loaded.ok
    ? []
    : loaded.problems.filter(
        (p) => !REPLACED_SECTIONS.some((s) => p.path === s || p.path.startsWith(`${s}.`)) && p.line > 0,
      );
  if (!loaded.ok && loaded.problems.some((p) => p.line === 0)) {
    throw new DemoConfigError(`cannot read ${path}`, loaded.problems);
  }
  if (problems.length > 0) throw new DemoConfigError(`${path} has problems`, problems);
  const doc = parseDocument(readFileSync(path, 'utf8'), { merge: true });
  const raw = doc.toJS({ maxAliasCount: 100 }) as Raw;
  const scaleSets = Array.isArray(raw.scaleSets) ? (raw.scaleSets as Raw[]) : [];
  return {
    name: typeof raw.name === 'string' ? raw.name : undefined,
    controller:
      typeof raw.controller === 'object' && raw.controller !== null ? (raw.controller as Raw) : undefined,
    scaleSets,
  };
}

/** Organizations, enterprise and runner groups the simulator must know for these scale sets. */
export function simulatorWorld(scaleSets: readonly Raw[]): {
  orgs: string[];
  enterprise: string | undefined;
  runnerGroups: string[];
  needsPat: boolean;
} {
  const orgs = new Set<string>();
  const groups = new Set<string>();
  let enterprise: string | undefined;
  for (const set of scaleSets) {
    const scope = (set.scope ?? {}) as Raw;
    if (typeof scope.org === 'string') orgs.add(scope.org);
    if (typeof scope.repo === 'string') orgs.add(scope.repo.split('/')[0]!);
    if (typeof scope.enterprise === 'string') enterprise = scope.enterprise;
    if (typeof set.runnerGroup === 'string' && set.runnerGroup !== 'Default') groups.add(set.runnerGroup);
  }
  if (orgs.size === 0) orgs.add('octo-org');
  return { orgs: [...orgs], enterprise, runnerGroups: [...groups], needsPat: enterprise !== undefined };
}

function durationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim());
  if (!m) return undefined;
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

/**
 * One scale set as the demo runs it: providers replaced by emulated runners (kubernetes scale sets stay on the
 * cluster with `keepKubernetes`), timeouts capped.
 */
function demoScaleSet(
  set: Raw,
  paths: DemoPaths,
  notes: string[],
  platforms: {
    readonly kubernetes: boolean;
    readonly ec2?: DemoEc2World;
    readonly fleet: string;
    readonly userFleet: boolean;
  },
): Raw {
  const name = String(set.name);
  const provider = (set.provider ?? {}) as Raw;
  const out: Raw = { ...set };
  if (provider.kind === 'ec2' && platforms.ec2 !== undefined) {
    // The built-in ec2 sets already launch from the demo's world; a user's are pointed at it.
    if (platforms.userFleet)
      out.provider = demoEc2Block(name, provider, platforms.ec2, platforms.fleet, notes);
    if (typeof set.minIdle === 'number' && set.minIdle > 0) {
      out.minIdle = 0;
      notes.push(`${name}: minIdle 0 for the demo, so that no instance is left running at the end`);
    }
  } else if (provider.kind === 'process') {
    out.provider = {
      kind: 'process',
      command: paths.nodePath,
      args: [paths.cliPath, 'emulate-runner'],
      workDir: join(paths.dir, 'runners'),
      stopGracePeriod: '2s',
      // A runner left behind (the demo killed hard) gives up on the vanished simulator within seconds.
      env: { RUNNER_FLEET_EMULATOR_RETRY_MS: '5000' },
    };
    if (provider.command !== undefined)
      notes.push(`${name}: runs the runner emulator instead of ${String(provider.command)}`);
  } else if (provider.kind === 'kubernetes' && platforms.kubernetes) {
    out.provider = provider;
  } else {
    out.provider = {
      kind: 'sim',
      ...(provider.kind === 'sim' && provider.bootDelay !== undefined
        ? { bootDelay: provider.bootDelay }
        : {}),
    };
    if (provider.kind !== 'sim') {
      notes.push(`${name}: ${String(provider.kind)} provider replaced by the simulated cloud (sim)`);
      delete out.identity;
    }
  }
  const idle = durationMs(set.idleTimeout) ?? 5 * 60_000;
  if (idle > DEMO_CAPS.idleTimeoutMs) {
    out.idleTimeout = DEMO_CAPS.idleTimeoutMs;
    notes.push(`${name}: idleTimeout capped at ${DEMO_CAPS.idleTimeoutMs / 1000}s for the demo`);
  }
  const boot = durationMs(set.bootstrapTimeout) ?? 10 * 60_000;
  if (boot > DEMO_CAPS.bootstrapTimeoutMs) out.bootstrapTimeout = DEMO_CAPS.bootstrapTimeoutMs;
  return out;
}

/**
 * The demo's own scale sets: the mixed built-in fleet, runner pods with `--provider kubernetes`, or EC2 instances
 * with `--provider ec2`.
 */
export function builtInScaleSets(
  platform: { readonly kubernetes?: { readonly namespace: string }; readonly ec2?: DemoEc2World } = {},
): readonly Raw[] {
  if (platform.kubernetes) return kubernetesScaleSets(platform.kubernetes.namespace);
  if (platform.ec2) return ec2ScaleSets(platform.ec2);
  return DEFAULT_SCALE_SETS;
}

export interface DemoConfigInput {
  readonly fleet: UserFleet | null;
  readonly simulator: DemoSimulatorInfo;
  readonly paths: DemoPaths;
  /** Port of the controller (0: any free port). */
  readonly port: number;
  /** Environment for references left in a user's file (e.g. `${env:...}` in a scale set). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** `--provider kubernetes`: kubernetes scale sets run on the cluster; the built-in sets are pods in `namespace`. */
  readonly kubernetes?: { readonly namespace: string };
  /** `--provider ec2`: ec2 scale sets run in the AWS endpoint's world; the built-in sets are EC2 instances. */
  readonly ec2?: DemoEc2World;
}

export interface DemoConfig {
  readonly config: FleetConfig;
  /** What the demo changed in a user's file, one line each. */
  readonly notes: readonly string[];
  /** Secret values in the config (for log scrubbing and leak checks). */
  readonly secrets: readonly string[];
}

/** Builds and validates the demo's FleetConfig. Throws DemoConfigError listing every problem. */
export function demoConfig(input: DemoConfigInput): DemoConfig {
  const { simulator, paths } = input;
  const notes: string[] = [];
  const sets =
    input.fleet?.scaleSets ??
    builtInScaleSets({
      ...(input.kubernetes ? { kubernetes: input.kubernetes } : {}),
      ...(input.ec2 ? { ec2: input.ec2 } : {}),
    });
  const world = simulatorWorld(sets);
  const name = input.fleet?.name ?? 'demo';
  const doc: Raw = {
    name,
    github: {
      url: simulator.baseUrl,
      apiUrl: simulator.apiUrl,
      auth: world.needsPat
        ? { token: `\${env:${SECRET_ENV.token}}` }
        : { app: { id: simulator.appId, privateKey: `\${env:${SECRET_ENV.appKey}}` } },
    },
    webhook: { secret: `\${env:${SECRET_ENV.webhookSecret}}` },
    server: { host: '127.0.0.1', port: input.port },
    store: { path: join(paths.dir, 'runner-fleet.db') },
    controller: {
      ...(input.fleet?.controller ?? {}),
      // Short, so a runner or job the webhooks missed is found quickly; the simulator has no rate-limit worry here.
      resyncInterval: '5s',
      orphanGracePeriod: '30s',
      failureBackoff: '1s',
    },
    scaleSets: sets.map((set) =>
      demoScaleSet(set, paths, notes, {
        kubernetes: input.kubernetes !== undefined,
        ...(input.ec2 ? { ec2: input.ec2 } : {}),
        fleet: name,
        userFleet: input.fleet !== null,
      }),
    ),
  };
  const env = {
    ...(input.env ?? {}),
    [SECRET_ENV.appKey]: simulator.privateKeyPem,
    [SECRET_ENV.token]: simulator.token,
    [SECRET_ENV.webhookSecret]: simulator.webhookSecret,
  };
  const result = parseConfig(stringify(doc), 'demo fleet.yaml', { env });
  if (!result.ok) throw new DemoConfigError('the demo configuration is not valid', result.problems);
  return {
    config: result.config,
    notes,
    secrets: [simulator.privateKeyPem, simulator.token, simulator.webhookSecret],
  };
}

function ownerRepo(scope: FleetConfig['scaleSets'][number]['scope'], orgs: readonly string[]) {
  if ('org' in scope) return { owner: scope.org, repo: 'app' };
  if ('repo' in scope) {
    const [owner, repo] = scope.repo.split('/');
    return { owner: owner!, repo: repo! };
  }
  return { owner: orgs[0] ?? 'octo-org', repo: 'app' };
}

/** One workload target per scale set (its labels, weighted by its max), and labels no scale set serves. */
export function workloadTargets(config: FleetConfig): {
  targets: WorkloadTarget[];
  unroutable: { owner: string; repo: string; labels: string[] };
} {
  const orgs = simulatorWorld(config.scaleSets as unknown as Raw[]).orgs;
  const targets = config.scaleSets.map((set) => ({
    ...ownerRepo(set.scope, orgs),
    labels: ['self-hosted', ...set.labels],
    // Square root: the big cloud set still takes most of the trickle, the small sets get steady work too.
    weight: Math.sqrt(Math.max(1, set.max)),
    scaleSet: set.name,
  }));
  const router = new LabelRouter(config.scaleSets);
  const owner = targets[0]?.owner ?? 'octo-org';
  const labels = [...UNROUTABLE_LABELS];
  while (router.route({ labels, owner, repo: 'app' }) !== null) labels.push(`no-runner-${labels.length}`);
  return { targets, unroutable: { owner, repo: 'app', labels } };
}
