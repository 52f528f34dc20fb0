/**
 * The `ec2` provider: one EC2 instance per runner. See docs/ec2-provider.md.
 *
 * AWS calls over one ephemeral runner's life: RunInstances (or CreateFleet), PutParameter, TerminateInstances,
 * DeleteParameter; state comes from the fleet-wide list (fleet-state.ts), one paginated DescribeInstances per resync.
 *
 * The registration secret goes into exactly one request, PutParameter (a SecureString at `<prefix>/<instance id>`),
 * and nowhere else: not user data, not tags, not a log line, not an error (AWS messages are scrubbed, SDK errors are
 * reduced to a summary before they become a cause).
 */
import type { EC2Client, Instance as Ec2Instance } from '@aws-sdk/client-ec2';
import {
  CreateFleetCommand,
  DescribeImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { SSMClient, Tag as SsmTag } from '@aws-sdk/client-ssm';
import { DeleteParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import type { Logger } from 'pino';
import type { RunnerParameter } from '../../aws/runner-parameter.js';
import { encodeRunnerParameter, runnerParameterName } from '../../aws/runner-parameter.js';
import { instanceArn } from '../../aws/policies.js';
import {
  EXIT_CODE_VALUES,
  TAG_FLEET,
  TAG_INSTANCE_ARN,
  TAG_INSTANCE_ID,
  TAG_RUNNER,
  TAG_SCALE_SET,
} from '../../aws/tags.js';
import type { Instance, InstanceSelector, InstanceSpec, Provider, ProviderContext } from '../provider.js';
import { ProviderError } from '../provider.js';
import type { AccountSource } from './account.js';
import { awsCode, awsError, scrubAwsText } from './errors.js';
import type { Ec2ProviderStats, FleetState, GcResult } from './fleet-state.js';
import type { Ec2InstanceRecord } from './instance-state.js';
import { instanceFromRecord, isInterrupted, isLive, recordFromEc2 } from './instance-state.js';
import type { LaunchPath, Market } from './launch.js';
import {
  MAX_USER_DATA_BYTES,
  clientToken,
  createFleetInput,
  failoverCodesOf,
  launchPathOf,
  runInstancesInput,
} from './launch.js';
import type { Ec2ProviderConfig, Ec2UserDataSettings } from './schema.js';
import { UserDataError } from '../../aws/user-data.js';

/** What the start-script renderer gets: names and places only, never the registration. */
export interface Ec2UserDataInput {
  readonly fleet: string;
  readonly scaleSet: string;
  readonly runnerName: string;
  readonly region: string;
  /** Where the instance finds its parameter: `<parameterPrefix>/<its instance id>`. */
  readonly parameterPrefix: string;
  /** The block's `userData` settings. */
  readonly settings: Ec2UserDataSettings | undefined;
}

/** Renders the start script (plain text, not base64) for `imageId` launches. */
export type Ec2UserDataRenderer = (input: Ec2UserDataInput) => string;

export interface Ec2Provider extends Provider {
  readonly kind: 'ec2';
  /** The SSM path prefix of this scale set's runner parameters. */
  readonly parameterPrefix: string;
  readonly launchPath: LaunchPath;
  /** Shared by every provider of the factory (the clients and the fleet lists are). */
  readonly stats: Readonly<Ec2ProviderStats>;
  prepare(signal: AbortSignal): Promise<void>;
  /** Runs the runner-parameter garbage collection now (list() runs it every few minutes by itself). */
  collectParameters(signal: AbortSignal): Promise<GcResult>;
}

export interface Ec2ProviderDeps {
  readonly config: Ec2ProviderConfig;
  readonly context: ProviderContext;
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly stats: Ec2ProviderStats;
  /** The shared state of a fleet in this provider's region (created on first use). */
  readonly fleetState: (fleet: string) => FleetState;
  /** The account of the instances, for the instance ARN each runner parameter is tagged with. */
  readonly account: AccountSource;
  readonly renderUserData?: Ec2UserDataRenderer;
  readonly now: () => number;
  /** Called once by close(). */
  readonly release: () => void;
}

/** Also a valid EC2 tag value and SSM-safe: letters, digits, '.', '_', '-'; what GitHub accepts as a runner name. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const SSM_STANDARD_MAX = 4096;

/** A CreateFleet `instant` answer that launched nothing: its Errors[] carried in an error shaped like the SDK's. */
class FleetLaunchError extends Error {
  readonly $metadata = { httpStatusCode: 200 };
  constructor(code: string, message: string) {
    super(message);
    this.name = code;
  }
}

function secretOf(spec: InstanceSpec): string {
  return spec.registration.mode === 'jit' ? spec.registration.jitConfig : spec.registration.token;
}

function parameterOf(spec: InstanceSpec): RunnerParameter {
  const r = spec.registration;
  if (r.mode === 'jit') return { mode: 'jit', jitConfig: r.jitConfig };
  return {
    mode: 'token',
    url: r.url,
    token: r.token,
    name: spec.name,
    labels: r.labels,
    runnerGroup: r.runnerGroup,
    ephemeral: r.ephemeral,
  };
}

function cleanupSignal(): AbortSignal {
  return AbortSignal.timeout(30_000);
}

export class Ec2InstanceProvider implements Ec2Provider {
  readonly kind = 'ec2' as const;
  readonly parameterPrefix: string;
  readonly launchPath: LaunchPath;
  readonly #d: Ec2ProviderDeps;
  readonly #config: Ec2ProviderConfig;
  readonly #fleet: string;
  readonly #scaleSet: string;
  readonly #logger: Logger;
  readonly #failover: ReadonlySet<string>;
  /** Fleets other than its own that this provider listed or created into (the contract suite does both). */
  readonly #otherFleets = new Set<string>();
  /** Spot interruptions already reported, by instance id. */
  readonly #interruptions = new Set<string>();
  #prepared: Promise<void> | undefined;
  #closed = false;

  constructor(deps: Ec2ProviderDeps) {
    this.#d = deps;
    this.#config = deps.config;
    this.#fleet = deps.context.fleet;
    this.#scaleSet = deps.context.scaleSet.name;
    this.#logger = deps.context.logger.child({ provider: 'ec2', scaleSet: this.#scaleSet });
    this.#failover = failoverCodesOf(deps.config);
    this.launchPath = launchPathOf(deps.config);
    this.parameterPrefix = (deps.config.ssm.pathPrefix ?? `/runner-fleet/${this.#fleet}`).replace(/\/+$/, '');
    deps.fleetState(this.#fleet).addPrefix(this.parameterPrefix);
  }

  get stats(): Readonly<Ec2ProviderStats> {
    return this.#d.stats;
  }

  // ---- prepare ------------------------------------------------------------------------------------------------

  prepare(signal: AbortSignal): Promise<void> {
    this.#prepared ??= this.#prepare(signal).catch((error: unknown) => {
      this.#prepared = undefined;
      throw error;
    });
    return this.#prepared;
  }

  async #prepare(signal: AbortSignal): Promise<void> {
    const where = `scale set ${this.#scaleSet}`;
    if (this.#config.launchTemplate === undefined && this.#d.renderUserData === undefined) {
      throw new ProviderError(
        `${where}: an imageId launch needs the start script as user data, and this controller has no renderer for it`,
        { code: 'ec2-no-user-data', retryable: false },
      );
    }
    const problems: string[] = [];
    if (this.#config.launchTemplate !== undefined)
      problems.push(...(await this.#checkLaunchTemplate(signal)));
    else {
      // The start script renders with this scale set's prefix and settings, and fits EC2's 16 KB.
      try {
        const text = this.#render(
          this.#d.renderUserData!,
          this.#fleet,
          this.#scaleSet,
          `${this.#scaleSet}-check`,
        );
        if (Buffer.byteLength(text, 'utf8') > MAX_USER_DATA_BYTES) {
          problems.push(`the rendered user data exceeds EC2's ${MAX_USER_DATA_BYTES} bytes`);
        }
      } catch (error) {
        if (!(error instanceof ProviderError)) throw error;
        problems.push(error.message.replace(`${where}: `, ''));
      }
    }
    problems.push(...(await this.#checkExisting(signal)));
    if (problems.length > 0) {
      throw new ProviderError(`${where}: ${problems.join('; ')}`, {
        code: 'ec2-prepare-failed',
        retryable: false,
      });
    }
  }

  /** The template exists and its version requires IMDSv2, terminates on shutdown, and has what a launch needs. */
  async #checkLaunchTemplate(signal: AbortSignal): Promise<string[]> {
    const lt = this.#config.launchTemplate!;
    const label = lt.id !== undefined ? `launch template ${lt.id}` : `launch template ${lt.name}`;
    const version = lt.version ?? '$Default';
    let data;
    try {
      const answer = await this.#d.ec2.send(
        new DescribeLaunchTemplateVersionsCommand({
          ...(lt.id !== undefined ? { LaunchTemplateId: lt.id } : { LaunchTemplateName: lt.name }),
          Versions: [version],
        }),
        { abortSignal: signal },
      );
      data = answer.LaunchTemplateVersions?.[0]?.LaunchTemplateData;
      if (data === undefined) return [`${label} has no version ${version}`];
    } catch (error) {
      const code = awsCode(error) ?? '';
      if (
        /^InvalidLaunchTemplate(Id|Name)\.(NotFound|NotFoundException|VersionNotFound|Malformed)/.test(code)
      ) {
        return [`${label} version ${version} does not exist in ${this.#config.region} (${code})`];
      }
      throw awsError('DescribeLaunchTemplateVersions', error, { subject: label, signal });
    }
    const problems: string[] = [];
    if (data.MetadataOptions?.HttpTokens !== 'required') {
      problems.push(
        `${label} version ${version} must require IMDSv2 (MetadataOptions.HttpTokens: required); ` +
          `it has ${data.MetadataOptions?.HttpTokens ?? 'none set'}`,
      );
    }
    if (data.InstanceInitiatedShutdownBehavior !== 'terminate') {
      problems.push(
        `${label} version ${version} must terminate on shutdown (InstanceInitiatedShutdownBehavior: ` +
          `terminate); it has ${data.InstanceInitiatedShutdownBehavior ?? 'none set (stop)'}`,
      );
    }
    if (this.#config.imageId === undefined && !data.ImageId) {
      problems.push(`${label} version ${version} has no ImageId and the provider block gives no imageId`);
    }
    if (this.#config.instanceTypes === undefined && !data.InstanceType) {
      problems.push(
        `${label} version ${version} has no InstanceType and the provider block gives no instanceTypes`,
      );
    }
    if (!data.IamInstanceProfile?.Arn && !data.IamInstanceProfile?.Name) {
      problems.push(
        `${label} version ${version} has no IamInstanceProfile: the instance could not read its SSM parameter`,
      );
    }
    if (!data.UserData) {
      problems.push(`${label} version ${version} has no UserData: nothing would start the runner`);
    }
    return problems;
  }

  /** Subnets, security groups and the AMI named in the block exist (one Describe call each, by filter). */
  async #checkExisting(signal: AbortSignal): Promise<string[]> {
    const problems: string[] = [];
    const region = this.#config.region;
    const missing = (what: string, wanted: readonly string[], found: Set<string>) => {
      const absent = wanted.filter((id) => !found.has(id));
      if (absent.length > 0) problems.push(`${what} not found in ${region}: ${absent.join(', ')}`);
    };
    const { subnetIds, securityGroupIds, imageId } = this.#config;
    try {
      if (subnetIds !== undefined) {
        const answer = await this.#d.ec2.send(
          new DescribeSubnetsCommand({ Filters: [{ Name: 'subnet-id', Values: [...subnetIds] }] }),
          { abortSignal: signal },
        );
        missing('subnets', subnetIds, new Set((answer.Subnets ?? []).map((s) => s.SubnetId ?? '')));
      }
    } catch (error) {
      throw awsError('DescribeSubnets', error, { signal });
    }
    try {
      if (securityGroupIds !== undefined) {
        const answer = await this.#d.ec2.send(
          new DescribeSecurityGroupsCommand({
            Filters: [{ Name: 'group-id', Values: [...securityGroupIds] }],
          }),
          { abortSignal: signal },
        );
        missing(
          'security groups',
          securityGroupIds,
          new Set((answer.SecurityGroups ?? []).map((g) => g.GroupId ?? '')),
        );
      }
    } catch (error) {
      throw awsError('DescribeSecurityGroups', error, { signal });
    }
    try {
      if (imageId !== undefined) {
        const answer = await this.#d.ec2.send(
          new DescribeImagesCommand({ Filters: [{ Name: 'image-id', Values: [imageId] }] }),
          { abortSignal: signal },
        );
        missing('image', [imageId], new Set((answer.Images ?? []).map((i) => i.ImageId ?? '')));
      }
    } catch (error) {
      throw awsError('DescribeImages', error, { signal });
    }
    return problems;
  }

  // ---- create -------------------------------------------------------------------------------------------------

  async create(spec: InstanceSpec, signal: AbortSignal): Promise<Instance> {
    this.#checkSpec(spec);
    if (spec.fleet !== this.#fleet) this.#otherFleets.add(spec.fleet);
    const state = this.#d.fleetState(spec.fleet);
    // Concurrent creates of one name: the later ones wait for the first and then find its instance.
    for (;;) {
      const running = state.creating.get(spec.name);
      if (running === undefined) break;
      await running.catch(() => undefined);
    }
    const attempt = this.#createOnce(spec, state, signal);
    state.creating.set(spec.name, attempt);
    try {
      return await attempt;
    } finally {
      if (state.creating.get(spec.name) === attempt) state.creating.delete(spec.name);
    }
  }

  #checkSpec(spec: InstanceSpec): void {
    if (!NAME.test(spec.name)) {
      throw new ProviderError(
        `invalid runner name ${JSON.stringify(spec.name.slice(0, 140))}: 1 to 128 of letters, digits, '.', '_' ` +
          `and '-', starting with a letter or digit`,
        { code: 'invalid-name', retryable: false },
      );
    }
    for (const [what, value] of [
      ['fleet', spec.fleet],
      ['scale set', spec.scaleSet],
    ] as const) {
      if (value.length === 0 || value.length > 256) {
        throw new ProviderError(`${what} name must be 1 to 256 characters to be a tag value`, {
          code: 'invalid-name',
          retryable: false,
        });
      }
    }
  }

  async #createOnce(spec: InstanceSpec, state: FleetState, signal: AbortSignal): Promise<Instance> {
    const known = state.known(spec.name);
    if (known !== undefined) {
      if (known.record.fleet !== spec.fleet || known.record.scaleSet !== spec.scaleSet) {
        throw new ProviderError(
          `runner ${spec.name} already has instance ${known.record.id} in scale set ${known.record.scaleSet}`,
          { code: 'name-conflict', retryable: false },
        );
      }
      // An instance launched before a crash (or a lost answer): finish the create by writing its parameter, which
      // the crash may have prevented. One that already ended is returned as it is; the reconciler sees its state.
      if (!known.parameterWritten && isLive(known.record)) {
        await this.#writeParameter(spec, known.record.id, signal);
        known.parameterWritten = true;
        this.#logger.info(
          { runner: spec.name, instance: known.record.id },
          'runner parameter written for existing instance',
        );
      }
      return instanceFromRecord(known.record);
    }

    // The parameter's tag needs the account; a CreateFleet answer does not carry it: learn it before launching.
    if (this.launchPath === 'CreateFleet') await this.#d.account.resolve(signal);
    const record = await this.#launch(spec, state, signal);
    const entry = state.launched(record);
    try {
      await this.#writeParameter(spec, record.id, signal);
    } catch (error) {
      // An instance without its parameter would wait for nothing: take it back, and let a retry launch anew.
      state.markDeleted(spec.name, record.id);
      state.bumpGeneration(spec.name);
      await this.#terminate([record.id], cleanupSignal()).catch((cleanupError: unknown) => {
        this.#logger.error(
          { runner: spec.name, instance: record.id, err: cleanupError },
          'terminating the instance of a failed create failed; the reconciler will find it as a stray instance',
        );
      });
      throw error;
    }
    entry.parameterWritten = true;
    this.#logger.info(
      { runner: spec.name, instance: record.id, spot: record.spot },
      'runner instance launched',
    );
    return instanceFromRecord(entry.record);
  }

  /** One launch, with one on-demand retry when spot capacity is refused with a failover code. */
  async #launch(spec: InstanceSpec, state: FleetState, signal: AbortSignal): Promise<Ec2InstanceRecord> {
    const market: Market = this.#config.capacity;
    try {
      return await this.#launchAs(spec, state, market, signal);
    } catch (error) {
      const code = awsCode(error);
      if (market !== 'spot' || code === undefined || !this.#failover.has(code)) {
        throw awsError(this.launchPath, error, {
          subject: `runner ${spec.name}`,
          secrets: [secretOf(spec)],
          signal,
        });
      }
      this.#d.stats.spotFallbacks++;
      const message = `no spot capacity for runner ${spec.name} (${code}); launching it on-demand`;
      this.#logger.warn({ runner: spec.name, code }, 'spot capacity refused; falling back to on-demand');
      this.#context.notify?.({ event: 'spot-fallback', instance: spec.name, message });
      try {
        return await this.#launchAs(spec, state, 'on-demand', signal);
      } catch (fallbackError) {
        throw awsError(`${this.launchPath} (on-demand fallback)`, fallbackError, {
          subject: `runner ${spec.name}`,
          secrets: [secretOf(spec)],
          signal,
        });
      }
    }
  }

  get #context(): ProviderContext {
    return this.#d.context;
  }

  async #launchAs(
    spec: InstanceSpec,
    state: FleetState,
    market: Market,
    signal: AbortSignal,
  ): Promise<Ec2InstanceRecord> {
    const runner = { name: spec.name, fleet: spec.fleet, scaleSet: spec.scaleSet };
    for (let replay = 0; ; replay++) {
      const token = clientToken(runner, state.generation(spec.name), market);
      let instance: Ec2Instance | undefined;
      try {
        instance =
          this.launchPath === 'RunInstances'
            ? await this.#runInstances(spec, market, token, signal)
            : await this.#createFleet(spec, market, token, signal);
      } catch (error) {
        // The token was used with other parameters (the block changed since): a new generation gets past it.
        if (awsCode(error) === 'IdempotentParameterMismatch') state.bumpGeneration(spec.name);
        throw error;
      }
      const record = recordFromEc2(instance, this.#d.now());
      if (record === undefined) {
        throw new ProviderError(
          `${this.launchPath} for runner ${spec.name} answered without the instance id`,
          {
            code: 'aws-bad-response',
            retryable: true,
          },
        );
      }
      if (isLive(record)) return record;
      // EC2 replays the first answer for a token: an instance of an earlier life of this name that has ended.
      state.bumpGeneration(spec.name);
      if (replay > 0) {
        throw new ProviderError(
          `${this.launchPath} for runner ${spec.name} returned an ended instance twice`,
          {
            code: 'aws-idempotency-replay',
            retryable: true,
          },
        );
      }
    }
  }

  #userData(spec: InstanceSpec): string | undefined {
    if (this.#config.launchTemplate !== undefined) return undefined;
    const render = this.#d.renderUserData;
    if (render === undefined) {
      throw new ProviderError(
        'an imageId launch needs the start script as user data; no renderer is configured',
        {
          code: 'ec2-no-user-data',
          retryable: false,
        },
      );
    }
    const text = this.#render(render, spec.fleet, spec.scaleSet, spec.name);
    const secret = secretOf(spec);
    if (secret.length > 0 && text.includes(secret)) {
      throw new ProviderError('the rendered user data contains the registration secret; refusing to launch', {
        code: 'ec2-secret-in-user-data',
        retryable: false,
      });
    }
    if (Buffer.byteLength(text, 'utf8') > MAX_USER_DATA_BYTES) {
      throw new ProviderError(`the rendered user data exceeds EC2's ${MAX_USER_DATA_BYTES} bytes`, {
        code: 'ec2-user-data-too-large',
        retryable: false,
      });
    }
    return text;
  }

  /** The renderer's text; a setting it refuses is a fatal ProviderError naming the setting. */
  #render(render: Ec2UserDataRenderer, fleet: string, scaleSet: string, runnerName: string): string {
    try {
      return render({
        fleet,
        scaleSet,
        runnerName,
        region: this.#config.region,
        parameterPrefix: this.parameterPrefix,
        settings: this.#config.userData,
      });
    } catch (error) {
      if (error instanceof UserDataError) {
        throw new ProviderError(`scale set ${scaleSet}: ${error.message}`, {
          code: 'ec2-bad-user-data',
          retryable: false,
        });
      }
      throw error;
    }
  }

  async #runInstances(
    spec: InstanceSpec,
    market: Market,
    token: string,
    signal: AbortSignal,
  ): Promise<Ec2Instance> {
    const userData = this.#userData(spec);
    const input = runInstancesInput(this.#config, {
      runner: spec,
      market,
      clientToken: token,
      ...(userData !== undefined ? { userData } : {}),
    });
    const answer = await this.#d.ec2.send(new RunInstancesCommand(input), { abortSignal: signal });
    this.#d.account.learn(answer.OwnerId);
    const instance = answer.Instances?.[0];
    if (instance?.InstanceId === undefined) {
      throw new ProviderError(`RunInstances for runner ${spec.name} answered without an instance`, {
        code: 'aws-bad-response',
        retryable: true,
      });
    }
    // The answer may lack tags (some endpoints omit them); the record needs the ownership we asked for.
    return { ...instance, Tags: instance.Tags?.length ? instance.Tags : input.TagSpecifications?.[0]?.Tags };
  }

  async #createFleet(
    spec: InstanceSpec,
    market: Market,
    token: string,
    signal: AbortSignal,
  ): Promise<Ec2Instance> {
    const input = createFleetInput(this.#config, { runner: spec, market, clientToken: token });
    const answer = await this.#d.ec2.send(new CreateFleetCommand(input), { abortSignal: signal });
    const launched = answer.Instances?.find((i) => (i.InstanceIds?.length ?? 0) > 0);
    const id = launched?.InstanceIds?.[0];
    if (id !== undefined) {
      // An instant fleet may launch and report errors for other overrides in one answer: the instance counts.
      return {
        InstanceId: id,
        InstanceType: launched?.InstanceType,
        ...(launched?.Lifecycle === 'spot' ? { InstanceLifecycle: 'spot' } : {}),
        State: { Name: 'pending', Code: 0 },
        Tags: input.TagSpecifications?.[0]?.Tags,
      };
    }
    const errors = answer.Errors ?? [];
    // Failover looks at every error: one override may be refused for capacity and another for its price.
    const failover = errors.find((e) => e.ErrorCode !== undefined && this.#failover.has(e.ErrorCode));
    const first = failover ?? errors[0];
    if (first?.ErrorCode === undefined) {
      throw new ProviderError(`CreateFleet for runner ${spec.name} launched nothing and reported no error`, {
        code: 'aws-capacity',
        retryable: true,
      });
    }
    const others = new Set(errors.map((e) => e.ErrorCode).filter((c) => c !== first.ErrorCode));
    const detail = `${scrubAwsText(first.ErrorMessage ?? '')}${others.size > 0 ? ` (also: ${[...others].join(', ')})` : ''}`;
    throw new FleetLaunchError(first.ErrorCode, detail);
  }

  /**
   * PutParameter with the ownership tags and the instance's ARN, which the instance policy compares with the
   * reading instance's ec2:SourceInstanceARN (docs/aws.md). AWS refuses tags together with Overwrite, so an existing
   * parameter (a retried create) is overwritten in a second call and keeps the tags it was created with.
   */
  async #writeParameter(spec: InstanceSpec, instanceId: string, signal: AbortSignal): Promise<void> {
    const name = runnerParameterName(this.parameterPrefix, instanceId);
    const account = await this.#d.account.resolve(signal);
    const value = encodeRunnerParameter(parameterOf(spec));
    const tags: SsmTag[] = [
      { Key: TAG_INSTANCE_ARN, Value: instanceArn(this.#config.region, account, instanceId) },
      { Key: TAG_INSTANCE_ID, Value: instanceId },
      { Key: TAG_FLEET, Value: spec.fleet },
      { Key: TAG_SCALE_SET, Value: spec.scaleSet },
      { Key: TAG_RUNNER, Value: spec.name },
      ...Object.entries(this.#config.tags ?? {}).map(([Key, Value]) => ({ Key, Value })),
    ];
    const base = {
      Name: name,
      Value: value,
      Type: 'SecureString' as const,
      ...(this.#config.ssm.kmsKeyId !== undefined ? { KeyId: this.#config.ssm.kmsKeyId } : {}),
      ...(value.length > SSM_STANDARD_MAX ? { Tier: 'Advanced' as const } : {}),
    };
    const secrets = [secretOf(spec), value];
    try {
      await this.#d.ssm.send(new PutParameterCommand({ ...base, Tags: tags }), { abortSignal: signal });
      return;
    } catch (error) {
      if (awsCode(error) !== 'ParameterAlreadyExists') {
        throw awsError('PutParameter', error, { subject: name, secrets, signal });
      }
    }
    try {
      await this.#d.ssm.send(new PutParameterCommand({ ...base, Overwrite: true }), { abortSignal: signal });
    } catch (error) {
      throw awsError('PutParameter', error, { subject: name, secrets, signal });
    }
  }

  // ---- delete -------------------------------------------------------------------------------------------------

  async delete(name: string, signal: AbortSignal): Promise<void> {
    if (!NAME.test(name)) return; // no instance can carry it
    const state = this.#stateHolding(name);
    for (;;) {
      const running = state.creating.get(name);
      if (running === undefined) break;
      await running.catch(() => undefined);
    }
    const known = state.known(name);
    const records = known !== undefined ? [known.record] : await state.lookup(name, signal);
    if (records.length === 0) return;
    // An instance already on its way out (the runner shut it down) needs no TerminateInstances.
    const running = records.filter((r) => r.state !== 'terminated' && r.state !== 'shutting-down');
    if (running.length > 0)
      await this.#terminate(
        running.map((r) => r.id),
        signal,
      );
    for (const record of records) state.markDeleted(name, record.id);
    for (const record of records) await this.#deleteParameter(record.id, signal);
    this.#logger.info({ runner: name, instances: records.map((r) => r.id) }, 'runner instance deleted');
  }

  /** The fleet state that knows the name: this provider's fleet first, then any other one it created into. */
  #stateHolding(name: string): FleetState {
    const own = this.#d.fleetState(this.#fleet);
    if (own.known(name) !== undefined || own.creating.has(name)) return own;
    for (const fleet of this.#otherFleets) {
      const other = this.#d.fleetState(fleet);
      if (other.known(name) !== undefined || other.creating.has(name)) return other;
    }
    return own;
  }

  async #terminate(ids: string[], signal: AbortSignal): Promise<void> {
    try {
      await this.#d.ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }), { abortSignal: signal });
    } catch (error) {
      if (awsCode(error) === 'InvalidInstanceID.NotFound') return;
      throw awsError('TerminateInstances', error, { subject: ids.join(', '), signal });
    }
  }

  async #deleteParameter(instanceId: string, signal: AbortSignal): Promise<void> {
    const name = runnerParameterName(this.parameterPrefix, instanceId);
    try {
      await this.#d.ssm.send(new DeleteParameterCommand({ Name: name }), { abortSignal: signal });
    } catch (error) {
      if (awsCode(error) === 'ParameterNotFound') return;
      throw awsError('DeleteParameter', error, { subject: name, signal });
    }
  }

  // ---- list ---------------------------------------------------------------------------------------------------

  async list(selector: InstanceSelector, signal: AbortSignal): Promise<Instance[]> {
    if (selector.fleet !== this.#fleet) this.#otherFleets.add(selector.fleet);
    const records = await this.#d.fleetState(selector.fleet).records(signal);
    const out: Instance[] = [];
    const own = selector.fleet === this.#fleet;
    const interrupted = new Set<string>();
    for (const record of records) {
      if (record.fleet !== selector.fleet) continue;
      if (own && record.scaleSet === this.#scaleSet && isInterrupted(record)) {
        interrupted.add(record.id);
        this.#reportInterruption(record);
      }
      if (selector.scaleSet !== undefined && record.scaleSet !== selector.scaleSet) continue;
      out.push(instanceFromRecord(record));
    }
    // Remember only interruptions still listed: each is reported once, and the set stays small.
    if (own) for (const id of this.#interruptions) if (!interrupted.has(id)) this.#interruptions.delete(id);
    return out;
  }

  #reportInterruption(record: Ec2InstanceRecord): void {
    if (this.#interruptions.has(record.id)) return;
    this.#interruptions.add(record.id);
    const why = record.exit === EXIT_CODE_VALUES.interrupted ? 'its interruption notice' : record.reasonCode;
    const message = `spot instance ${record.id} of runner ${record.name} was interrupted by AWS (${why})`;
    this.#logger.warn(
      { runner: record.name, instance: record.id, reason: record.reasonCode, exit: record.exit },
      'spot instance interrupted',
    );
    this.#context.notify?.({ event: 'spot-interruption', instance: record.name, message });
  }

  collectParameters(signal: AbortSignal): Promise<GcResult> {
    return this.#d.fleetState(this.#fleet).collectParameters(signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#d.fleetState(this.#fleet).removePrefix(this.parameterPrefix);
    this.#d.release();
  }
}
