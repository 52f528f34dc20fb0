/**
 * The AWS access check of `start` and `doctor` for ec2 scale sets: with the controller's own credentials, who it is
 * (STS), that each launch template exists and requires IMDSv2, that each subnet exists, and that each SSM prefix is
 * writable (a tagged SecureString probe is put and deleted). One line per check; a failing line names what is
 * missing and, for a denied call, the IAM action and the statement (Sid) of `runner-fleet aws-policy` that grants it.
 * A failure is a line, never an exception: the caller decides whether to refuse to start.
 */
import {
  DescribeLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
  DescribeSubnetsCommand,
} from '@aws-sdk/client-ec2';
import { DeleteParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import type { FleetConfig } from '../../core/fleet-config.js';
import type { AwsClients, AwsPlace } from '../../aws/clients.js';
import type { Ec2ScaleSetView } from '../../aws/ec2-scale-sets.js';
import { ec2ScaleSets } from '../../aws/ec2-scale-sets.js';
import { AWS_FEATURES, POLICY_RULES, ruleActions } from '../../aws/policies.js';
import { TAG_FLEET } from '../../aws/tags.js';

export interface AccessLine {
  readonly ok: boolean;
  readonly text: string;
}

export interface Ec2AccessReport {
  /** Every line ok (also when there is no ec2 scale set: no line at all). */
  readonly ok: boolean;
  readonly lines: readonly AccessLine[];
}

/** The probe parameter the check puts and deletes under each prefix. Not a secret. */
export const ACCESS_PROBE_NAME = 'runner-fleet-access-probe';
const PROBE_VALUE = 'runner-fleet access probe (not a secret)';

const ALL_FEATURES = new Set(AWS_FEATURES);

/** The controller statement that grants `action` (the alias variant of a KMS statement when `alias`). */
export function controllerSidFor(action: string, alias = false): string | undefined {
  const rules = POLICY_RULES.filter(
    (r) => r.principal === 'controller' && ruleActions(r, ALL_FEATURES).includes(action),
  );
  const preferred = rules.find((r) => (r.when === 'kmsAlias') === alias) ?? rules[0];
  return preferred?.sid;
}

interface AwsErrorShape {
  readonly name?: string;
  readonly Code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $response?: { readonly statusCode?: number };
}

const errorName = (error: unknown): string => {
  const e = error as AwsErrorShape;
  return e?.name ?? e?.Code ?? 'Error';
};

const httpStatus = (error: unknown): number | undefined => {
  const e = error as AwsErrorShape;
  return e?.$metadata?.httpStatusCode ?? e?.$response?.statusCode;
};

/** `Name: message`, cut short (EC2's encoded authorization messages run to kilobytes). */
function describeError(error: unknown): string {
  const message = ((error as AwsErrorShape)?.message ?? String(error)).replace(/\s+/g, ' ').trim();
  // An answer the SDK could not parse (a proxy's page, an emulator's XML where JSON was due): its status says more.
  if (/Deserialization error/.test(message))
    return `HTTP ${httpStatus(error) ?? '?'} with a body the SDK cannot read`;
  const short = message.length > 200 ? `${message.slice(0, 200)}…` : message;
  return `${errorName(error)}: ${short}`;
}

const DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'UnauthorizedAccess',
]);

function isDenied(error: unknown): boolean {
  return (
    DENIED.has(errorName(error)) ||
    httpStatus(error) === 403 ||
    /not authorized to perform/i.test((error as AwsErrorShape)?.message ?? '')
  );
}

const isNotFound = (error: unknown): boolean => /NotFound/.test(errorName(error));

/** The action AWS names in a denial (`... not authorized to perform: ssm:AddTagsToResource ...`), else `fallback`. */
function deniedAction(error: unknown, fallback: string): string {
  return /perform: ([a-z0-9-]+:[A-Za-z]+)/.exec((error as AwsErrorShape)?.message ?? '')?.[1] ?? fallback;
}

/** `needs ssm:PutParameter (statement WriteAndDeleteRunnerParameters of runner-fleet aws-policy)` */
function needs(action: string, alias = false): string {
  const sid = controllerSidFor(action, alias);
  return sid
    ? `needs ${action} (statement ${sid} of runner-fleet aws-policy)`
    : `needs ${action}, which runner-fleet's policy does not grant`;
}

const placeKey = (p: AwsPlace) => `${p.region}|${p.endpoint ?? ''}`;
const placeOf = (v: Ec2ScaleSetView): AwsPlace => ({
  region: v.region,
  ...(v.endpoint !== undefined ? { endpoint: v.endpoint } : {}),
});
const setsText = (views: readonly Ec2ScaleSetView[]) =>
  `scale set${views.length === 1 ? '' : 's'} ${[...new Set(views.map((v) => v.scaleSet))].join(', ')}`;

/** Groups items by key, keeping first-seen order. */
function groupBy<T>(items: readonly T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return [...groups.values()];
}

type Clients = Pick<AwsClients, 'ec2' | 'ssm' | 'sts'>;

async function checkIdentity(place: AwsPlace, clients: Clients, signal: AbortSignal): Promise<AccessLine> {
  const where = place.endpoint ? ` (endpoint ${place.endpoint})` : '';
  try {
    const id = await clients.sts(place).send(new GetCallerIdentityCommand({}), { abortSignal: signal });
    return { ok: true, text: `AWS identity${where}: ${id.Arn ?? '?'} (account ${id.Account ?? '?'})` };
  } catch (error) {
    return {
      ok: false,
      text:
        `AWS identity${where}: STS GetCallerIdentity failed in ${place.region}: ${describeError(error)} ` +
        '(no usable AWS credentials; the call itself needs no IAM permission)',
    };
  }
}

async function checkLaunchTemplate(
  views: readonly Ec2ScaleSetView[],
  clients: Clients,
  signal: AbortSignal,
): Promise<AccessLine> {
  const first = views[0] as Ec2ScaleSetView;
  const lt = first.launchTemplate ?? {};
  const region = first.region;
  const label = lt.id !== undefined ? `launch template ${lt.id}` : `launch template "${lt.name ?? ''}"`;
  const who = `(${setsText(views)})`;
  const ec2 = clients.ec2(placeOf(first));
  let id: string | undefined;
  try {
    const found = await ec2.send(
      new DescribeLaunchTemplatesCommand(
        lt.id !== undefined ? { LaunchTemplateIds: [lt.id] } : { LaunchTemplateNames: [lt.name ?? ''] },
      ),
      { abortSignal: signal },
    );
    id = found.LaunchTemplates?.[0]?.LaunchTemplateId;
  } catch (error) {
    if (isDenied(error)) {
      return {
        ok: false,
        text: `${label} in ${region} ${who}: cannot be checked: ${describeError(error)}; ${needs(deniedAction(error, 'ec2:DescribeLaunchTemplates'))}`,
      };
    }
    if (!isNotFound(error)) {
      return {
        ok: false,
        text: `${label} in ${region} ${who}: DescribeLaunchTemplates failed: ${describeError(error)}`,
      };
    }
  }
  if (id === undefined) return { ok: false, text: `${label} ${who} does not exist in ${region}` };
  const version = lt.version ?? '$Default';
  try {
    const versions = await ec2.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: id, Versions: [version] }),
      { abortSignal: signal },
    );
    const found = versions.LaunchTemplateVersions?.[0];
    if (found === undefined)
      return { ok: false, text: `${label} ${who} has no version ${version} in ${region}` };
    const tokens = found.LaunchTemplateData?.MetadataOptions?.HttpTokens;
    const named = `${label}${lt.id === undefined ? ` (${id})` : ''} version ${found.VersionNumber ?? version}`;
    if (tokens !== 'required') {
      return {
        ok: false,
        text:
          `${named} ${who} does not require IMDSv2 (MetadataOptions.HttpTokens is ${tokens ?? 'not set'}): ` +
          'set HttpTokens to required, so that nothing on a runner can read the instance credentials with a plain GET',
      };
    }
    return { ok: true, text: `${named} exists in ${region} and requires IMDSv2` };
  } catch (error) {
    if (isDenied(error)) {
      return {
        ok: false,
        text: `${label} in ${region} ${who}: its version cannot be checked: ${describeError(error)}; ${needs(deniedAction(error, 'ec2:DescribeLaunchTemplateVersions'))}`,
      };
    }
    if (isNotFound(error))
      return { ok: false, text: `${label} ${who} has no version ${version} in ${region}` };
    return {
      ok: false,
      text: `${label} in ${region} ${who}: DescribeLaunchTemplateVersions failed: ${describeError(error)}`,
    };
  }
}

async function checkSubnets(
  views: readonly Ec2ScaleSetView[],
  clients: Clients,
  signal: AbortSignal,
): Promise<AccessLine[]> {
  const first = views[0] as Ec2ScaleSetView;
  const region = first.region;
  const ids = [...new Set(views.flatMap((v) => v.subnetIds))];
  if (ids.length === 0) return [];
  const ec2 = clients.ec2(placeOf(first));
  const describe = (SubnetIds: string[]) =>
    ec2.send(new DescribeSubnetsCommand({ SubnetIds }), { abortSignal: signal });
  const deniedLine = (error: unknown): AccessLine => ({
    ok: false,
    text: `subnets in ${region} (${setsText(views)}): cannot be checked: ${describeError(error)}; ${needs(deniedAction(error, 'ec2:DescribeSubnets'))}`,
  });
  const found = new Set<string>();
  try {
    for (const s of (await describe(ids)).Subnets ?? []) if (s.SubnetId) found.add(s.SubnetId);
  } catch (error) {
    if (isDenied(error)) return [deniedLine(error)];
    if (!isNotFound(error)) {
      return [{ ok: false, text: `subnets in ${region}: DescribeSubnets failed: ${describeError(error)}` }];
    }
    // One of them is missing: ask for each, to name every missing one.
    for (const id of ids) {
      try {
        for (const s of (await describe([id])).Subnets ?? []) if (s.SubnetId) found.add(s.SubnetId);
      } catch (each) {
        if (!isNotFound(each))
          return [isDenied(each) ? deniedLine(each) : { ok: false, text: describeError(each) }];
      }
    }
  }
  const lines: AccessLine[] = ids
    .filter((id) => !found.has(id))
    .map((id) => ({
      ok: false,
      text: `subnet ${id} (${setsText(views.filter((v) => v.subnetIds.includes(id)))}) does not exist in ${region}`,
    }));
  const present = ids.filter((id) => found.has(id));
  if (present.length > 0) {
    lines.unshift({
      ok: true,
      text: `subnet${present.length === 1 ? '' : 's'} ${present.join(', ')} exist in ${region}`,
    });
  }
  return lines;
}

async function checkPrefix(
  views: readonly Ec2ScaleSetView[],
  fleet: string,
  clients: Clients,
  signal: AbortSignal,
): Promise<AccessLine> {
  const first = views[0] as Ec2ScaleSetView;
  const { pathPrefix: prefix, kmsKeyId } = first.ssm;
  const region = first.region;
  const alias = kmsKeyId !== undefined && /(^|:)alias\//.test(kmsKeyId);
  const name = `${prefix}/${ACCESS_PROBE_NAME}`;
  const ssm = clients.ssm(placeOf(first));
  const withKey = kmsKeyId !== undefined ? ` with KMS key ${kmsKeyId}` : '';
  const put = () =>
    ssm.send(
      new PutParameterCommand({
        Name: name,
        Value: PROBE_VALUE,
        Type: 'SecureString',
        ...(kmsKeyId !== undefined ? { KeyId: kmsKeyId } : {}),
        Tags: [{ Key: TAG_FLEET, Value: fleet }],
      }),
      { abortSignal: signal },
    );
  const del = () => ssm.send(new DeleteParameterCommand({ Name: name }), { abortSignal: signal });
  const failed = (what: string, error: unknown, action: string): AccessLine => ({
    ok: false,
    text:
      `SSM prefix ${prefix} is not writable in ${region}${withKey} (${setsText(views)}): ${what} failed: ` +
      `${describeError(error)}` +
      (isDenied(error) ? `; ${needs(deniedAction(error, action), alias)}` : ''),
  });
  try {
    await put();
  } catch (error) {
    if (errorName(error) !== 'ParameterAlreadyExists')
      return failed(`PutParameter ${name}`, error, 'ssm:PutParameter');
    // Left over from an interrupted check: remove it and try again.
    try {
      await del();
      await put();
    } catch (again) {
      return failed(`PutParameter ${name}`, again, 'ssm:PutParameter');
    }
  }
  try {
    await del();
  } catch (error) {
    const line = failed(`DeleteParameter ${name}`, error, 'ssm:DeleteParameter');
    return { ok: false, text: `${line.text} (the probe is left behind: delete it by hand)` };
  }
  return {
    ok: true,
    text: `SSM prefix ${prefix} is writable in ${region}${withKey} (put and deleted ${name})`,
  };
}

/**
 * Checks the AWS access the fleet's ec2 scale sets need. No ec2 scale set: ok, no lines. Calls go out one at a time
 * (a handful per region); an aborted signal ends the check with a failing line.
 */
export async function checkEc2Access(
  config: Pick<FleetConfig, 'name' | 'scaleSets'>,
  clients: Clients,
  signal: AbortSignal,
): Promise<Ec2AccessReport> {
  const views = ec2ScaleSets(config);
  const lines: AccessLine[] = [];
  const steps: (() => Promise<AccessLine | AccessLine[]>)[] = [];
  for (const group of groupBy(views, (v) => v.endpoint ?? '')) {
    steps.push(() => checkIdentity(placeOf(group[0] as Ec2ScaleSetView), clients, signal));
  }
  const withTemplate = views.filter((v) => v.launchTemplate !== undefined);
  for (const group of groupBy(withTemplate, (v) => {
    const lt = v.launchTemplate ?? {};
    return `${placeKey(placeOf(v))}|${lt.id ?? ''}|${lt.name ?? ''}|${lt.version ?? ''}`;
  })) {
    steps.push(() => checkLaunchTemplate(group, clients, signal));
  }
  for (const group of groupBy(views, (v) => placeKey(placeOf(v)))) {
    steps.push(() => checkSubnets(group, clients, signal));
  }
  for (const group of groupBy(
    views,
    (v) => `${placeKey(placeOf(v))}|${v.ssm.pathPrefix}|${v.ssm.kmsKeyId ?? ''}`,
  )) {
    steps.push(() => checkPrefix(group, config.name, clients, signal));
  }
  for (const step of steps) {
    if (signal.aborted) {
      lines.push({ ok: false, text: 'AWS access check aborted before it was complete' });
      break;
    }
    const result = await step();
    lines.push(...(Array.isArray(result) ? result : [result]));
  }
  return { ok: lines.every((l) => l.ok), lines };
}
