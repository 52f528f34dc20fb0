/**
 * The ec2 provider against moto, through a fault proxy that counts every AWS call and injects AWS's own error answers:
 * both launch paths, tags, IMDSv2, the SSM parameter and its lifecycle, idempotent create across a restart, one
 * DescribeInstances per resync for a whole fleet, parameter garbage collection, spot failover, error mapping and the
 * prepare() checks. Secrets are looked for in everything the provider returns, logs, tags and user data.
 */
import { inspect } from 'node:util';
import type { Instance as Ec2Instance } from '@aws-sdk/client-ec2';
import {
  CreateTagsCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParametersByPathCommand,
  ListTagsForResourceCommand,
  PutParameterCommand,
} from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeRunnerParameter } from '../../src/aws/runner-parameter.js';
import {
  TAG_EXIT_CODE,
  TAG_FLEET,
  TAG_INSTANCE_ARN,
  TAG_INSTANCE_ID,
  TAG_RUNNER,
  TAG_SCALE_SET,
} from '../../src/aws/tags.js';
import type {
  Ec2Provider,
  Ec2ProviderFactory,
  Ec2ProviderFactoryOptions,
} from '../../src/providers/ec2/index.js';
import { UserDataError } from '../../src/aws/user-data.js';
import { createEc2ProviderFactory, ec2ProviderSchema } from '../../src/providers/ec2/index.js';
import { renderEc2UserData } from '../../src/providers/ec2/user-data.js';
import type { Instance, InstanceSpec } from '../../src/providers/provider.js';
import { ProviderError } from '../../src/providers/provider.js';
import type { AwsFaultProxy } from '../support/aws-fault-proxy.js';
import { startAwsFaultProxy } from '../support/aws-fault-proxy.js';
import type { MotoServer } from '../support/moto.js';
import { MOTO_ACCOUNT, MOTO_CREDENTIALS, requireAwsPeers, startMoto } from '../support/moto.js';
import type { AwsWorld, Observed } from './ec2-fixtures.js';
import {
  buildAwsWorld,
  GOOD_TEMPLATE,
  jitSpec,
  LOOSE_TEMPLATE,
  observedContext,
  PROFILE,
  REGION,
  secretOf,
  TEMPLATE_USER_DATA,
  tokenSpec,
} from './ec2-fixtures.js';

const START_SCRIPT =
  '#!/bin/bash\n# runner-fleet start script (test stand-in)\nexec /opt/runner-fleet/start\n';

describe.skipIf(!requireAwsPeers('aws/ec2-provider'))('ec2 provider against moto', () => {
  let moto: MotoServer;
  let proxy: AwsFaultProxy;
  let world: AwsWorld;
  const factories: Ec2ProviderFactory[] = [];
  const observed: Observed[] = [];
  /** Every secret handed to a provider: none may show up in a log line or notice. */
  const secrets: string[] = [];
  let counter = 0;
  const unique = (label: string) => `${label}-${(counter++).toString(36)}-${process.pid.toString(36)}`;
  const signal = () => AbortSignal.timeout(60_000);

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startAwsFaultProxy(moto.url);
    world = await buildAwsWorld(moto);
  }, 120_000);

  afterEach(() => {
    proxy.clearFaults();
  });

  afterAll(async () => {
    for (const factory of factories) await factory.close();
    for (const { logs, notices } of observed) {
      const text = logs.text() + JSON.stringify(notices);
      for (const secret of secrets) expect(text.includes(secret), 'a secret reached a log line').toBe(false);
    }
    world?.destroy();
    await proxy?.close();
    await moto?.stop();
  });

  function factory(options: Ec2ProviderFactoryOptions = {}): Ec2ProviderFactory {
    const made = createEc2ProviderFactory({
      endpoint: proxy.url,
      credentials: MOTO_CREDENTIALS,
      renderUserData: () => START_SCRIPT,
      timings: { gcMinAgeMs: 0 },
      ...options,
    });
    factories.push(made);
    return made;
  }

  /** Zero counts, once no background parameter GC of any factory is still calling AWS. */
  async function reset(): Promise<void> {
    await Promise.all(factories.map((f) => f.settled()));
    proxy.resetCounts();
  }

  function imageBlock(extra: Record<string, unknown> = {}) {
    return ec2ProviderSchema.parse({
      kind: 'ec2',
      region: REGION,
      imageId: world.imageId,
      instanceProfile: PROFILE,
      securityGroupIds: [world.securityGroupId],
      instanceTypes: ['t3.micro'],
      subnetIds: [world.subnetIds[0]],
      tags: { team: 'ci', 'cost-center': '42' },
      ...extra,
    });
  }

  function templateBlock(extra: Record<string, unknown> = {}) {
    return ec2ProviderSchema.parse({
      kind: 'ec2',
      region: REGION,
      launchTemplate: { name: GOOD_TEMPLATE },
      instanceTypes: ['t3.small', 't3.medium'],
      subnetIds: world.subnetIds.slice(0, 2),
      ...extra,
    });
  }

  function provider(
    made: Ec2ProviderFactory,
    block: ReturnType<typeof imageBlock>,
    fleet: string,
    scaleSet = 'linux',
  ): { provider: Ec2Provider; seen: Observed } {
    const seen = observedContext(fleet, scaleSet);
    observed.push(seen);
    return { provider: made.create(block, seen.context), seen };
  }

  function track(spec: InstanceSpec): InstanceSpec {
    secrets.push(secretOf(spec));
    return spec;
  }

  async function describeOne(id: string): Promise<Ec2Instance> {
    const answer = await world.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return answer.Reservations![0]!.Instances![0]!;
  }

  async function instancesNamed(name: string): Promise<Ec2Instance[]> {
    const answer = await world.ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG_RUNNER}`, Values: [name] }] }),
    );
    return (answer.Reservations ?? []).flatMap((r) => r.Instances ?? []);
  }

  async function parameter(name: string) {
    try {
      const answer = await world.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      return answer.Parameter;
    } catch (error) {
      if ((error as Error).name === 'ParameterNotFound') return undefined;
      throw error;
    }
  }

  const tagsOf = (tags: { Key?: string; Value?: string }[] | undefined) =>
    Object.fromEntries((tags ?? []).map((t) => [t.Key, t.Value]));

  function expectNoSecret(value: unknown, secret: string): void {
    const text = typeof value === 'string' ? value : inspect(value, { depth: 10, showHidden: true });
    expect(text.includes(secret), 'the registration secret leaked').toBe(false);
  }

  async function failure(promise: Promise<unknown>): Promise<ProviderError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }

  describe('create', () => {
    it('imageId launch: one RunInstances with tags on instance and volumes, IMDSv2, terminate on shutdown, then the parameter', async () => {
      const fleet = unique('f-image');
      const { provider: p } = provider(factory(), imageBlock(), fleet);
      for (const make of [jitSpec, tokenSpec]) {
        const spec = track(make(unique('runner'), fleet, 'linux'));
        await reset();
        const instance = await p.create(spec, signal());
        expect(instance).toMatchObject({ name: spec.name, fleet, scaleSet: 'linux', state: 'pending' });
        expect(instance.providerId).toMatch(/^i-[0-9a-f]+$/);
        expect(proxy.counts).toEqual({ RunInstances: 1, PutParameter: 1 });
        expectNoSecret(instance, secretOf(spec));

        const ec2 = await describeOne(instance.providerId!);
        const tags = tagsOf(ec2.Tags);
        expect(tags).toMatchObject({
          [TAG_FLEET]: fleet,
          [TAG_SCALE_SET]: 'linux',
          [TAG_RUNNER]: spec.name,
          Name: spec.name,
          team: 'ci',
          'cost-center': '42',
        });
        expect(ec2.MetadataOptions?.HttpTokens).toBe('required');
        expect(ec2.IamInstanceProfile?.Arn).toContain(`instance-profile/${PROFILE}`);
        expect(ec2.InstanceType).toBe('t3.micro');
        expect(ec2.SubnetId).toBe(world.subnetIds[0]);
        expect(ec2.InstanceLifecycle).toBeUndefined();
        const shutdown = await world.ec2.send(
          new DescribeInstanceAttributeCommand({
            InstanceId: instance.providerId,
            Attribute: 'instanceInitiatedShutdownBehavior',
          }),
        );
        expect(shutdown.InstanceInitiatedShutdownBehavior?.Value).toBe('terminate');
        const userData = await world.ec2.send(
          new DescribeInstanceAttributeCommand({ InstanceId: instance.providerId, Attribute: 'userData' }),
        );
        const script = Buffer.from(userData.UserData?.Value ?? '', 'base64').toString('utf8');
        expect(script).toBe(START_SCRIPT);
        expectNoSecret(script, secretOf(spec));
        expectNoSecret(userData.UserData?.Value ?? '', secretOf(spec));
        expectNoSecret(JSON.stringify(ec2.Tags), secretOf(spec));

        const volumes = await world.ec2.send(
          new DescribeVolumesCommand({
            Filters: [{ Name: 'attachment.instance-id', Values: [instance.providerId!] }],
          }),
        );
        expect(volumes.Volumes?.length).toBeGreaterThan(0);
        for (const volume of volumes.Volumes ?? []) {
          expect(tagsOf(volume.Tags)).toMatchObject({ [TAG_FLEET]: fleet, [TAG_RUNNER]: spec.name });
        }

        const name = `${p.parameterPrefix}/${instance.providerId}`;
        expect(p.parameterPrefix).toBe(`/runner-fleet/${fleet}`);
        const stored = await parameter(name);
        expect(stored?.Type).toBe('SecureString');
        const decoded = decodeRunnerParameter(stored!.Value!);
        if (spec.registration.mode === 'jit') {
          expect(decoded).toEqual({ mode: 'jit', jitConfig: spec.registration.jitConfig });
        } else {
          expect(decoded).toEqual({
            mode: 'token',
            url: spec.registration.url,
            token: spec.registration.token,
            name: spec.name,
            labels: ['linux', 'x64'],
            runnerGroup: 'Default',
            ephemeral: true,
          });
        }
        const parameterTags = await world.ssm.send(
          new ListTagsForResourceCommand({ ResourceType: 'Parameter', ResourceId: name }),
        );
        expect(tagsOf(parameterTags.TagList)).toEqual({
          // What the instance policy compares with ec2:SourceInstanceARN; the account from the RunInstances answer.
          [TAG_INSTANCE_ARN]: `arn:aws:ec2:${REGION}:${MOTO_ACCOUNT}:instance/${instance.providerId}`,
          [TAG_INSTANCE_ID]: instance.providerId,
          [TAG_FLEET]: fleet,
          [TAG_SCALE_SET]: 'linux',
          [TAG_RUNNER]: spec.name,
          team: 'ci',
          'cost-center': '42',
        });
        expectNoSecret(JSON.stringify(parameterTags.TagList), secretOf(spec));
        expectNoSecret(await p.list({ fleet }, signal()), secretOf(spec));
      }
    });

    it('launch template with several types and subnets: one CreateFleet (instant) over types x subnets', async () => {
      const fleet = unique('f-fleet');
      const { provider: p } = provider(factory(), templateBlock({ capacity: 'spot' }), fleet);
      expect(p.launchPath).toBe('CreateFleet');
      const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
      const requests: URLSearchParams[] = [];
      proxy.inject({
        action: 'CreateFleet',
        when: (r) => {
          requests.push(r.form);
          return false;
        },
      });
      await reset();
      const instance = await p.create(spec, signal());
      // A CreateFleet answer names no account: the factory asks STS once, before its first launch.
      expect(proxy.counts).toEqual({ GetCallerIdentity: 1, CreateFleet: 1, PutParameter: 1 });
      const form = requests[0]!;
      expect(form.get('Type')).toBe('instant');
      expect(form.get('TargetCapacitySpecification.TotalTargetCapacity')).toBe('1');
      expect(form.get('TargetCapacitySpecification.DefaultTargetCapacityType')).toBe('spot');
      expect(form.get('SpotOptions.AllocationStrategy')).toBe('price-capacity-optimized');
      expect(form.get('LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName')).toBe(
        GOOD_TEMPLATE,
      );
      const overrides = [1, 2, 3, 4].map((i) => [
        form.get(`LaunchTemplateConfigs.1.Overrides.${i}.InstanceType`),
        form.get(`LaunchTemplateConfigs.1.Overrides.${i}.SubnetId`),
      ]);
      expect(overrides).toEqual([
        ['t3.small', world.subnetIds[0]],
        ['t3.small', world.subnetIds[1]],
        ['t3.medium', world.subnetIds[0]],
        ['t3.medium', world.subnetIds[1]],
      ]);
      expect(form.get('ClientToken')).toMatch(/^rf1-/);

      const ec2 = await describeOne(instance.providerId!);
      expect(tagsOf(ec2.Tags)).toMatchObject({
        [TAG_FLEET]: fleet,
        [TAG_RUNNER]: spec.name,
        Name: spec.name,
      });
      expect(['t3.small', 't3.medium']).toContain(ec2.InstanceType);
      expect(ec2.InstanceLifecycle).toBe('spot');
      expect(
        decodeRunnerParameter((await parameter(`${p.parameterPrefix}/${instance.providerId}`))!.Value!),
      ).toEqual({
        mode: 'jit',
        jitConfig: secretOf(spec),
      });
      const parameterTags = await world.ssm.send(
        new ListTagsForResourceCommand({
          ResourceType: 'Parameter',
          ResourceId: `${p.parameterPrefix}/${instance.providerId}`,
        }),
      );
      expect(tagsOf(parameterTags.TagList)[TAG_INSTANCE_ARN]).toBe(
        `arn:aws:ec2:${REGION}:${MOTO_ACCOUNT}:instance/${instance.providerId}`,
      );
      // The account is asked once per factory.
      await reset();
      await p.create(track(jitSpec(unique('runner'), fleet, 'linux')), signal());
      expect(proxy.counts).toEqual({ CreateFleet: 1, PutParameter: 1 });
      // The template's own user data starts the runner; runner-fleet adds none.
      const userData = await world.ec2.send(
        new DescribeInstanceAttributeCommand({ InstanceId: instance.providerId, Attribute: 'userData' }),
      );
      expect(Buffer.from(userData.UserData?.Value ?? '', 'base64').toString('utf8')).toBe(TEMPLATE_USER_DATA);
    });

    it('launch template with one type and one subnet: RunInstances from the template, spot market options', async () => {
      const fleet = unique('f-lt-run');
      const block = templateBlock({
        instanceTypes: ['t3.small'],
        subnetIds: [world.subnetIds[1]],
        capacity: 'spot',
        launchTemplate: { id: world.goodTemplateId, version: 1 },
      });
      const { provider: p } = provider(factory(), block, fleet);
      expect(p.launchPath).toBe('RunInstances');
      const forms: URLSearchParams[] = [];
      proxy.inject({ action: 'RunInstances', when: (r) => (forms.push(r.form), false) });
      await reset();
      const instance = await p.create(track(jitSpec(unique('runner'), fleet, 'linux')), signal());
      expect(proxy.counts).toEqual({ RunInstances: 1, PutParameter: 1 });
      expect(forms[0]!.get('LaunchTemplate.LaunchTemplateId')).toBe(world.goodTemplateId);
      expect(forms[0]!.get('LaunchTemplate.Version')).toBe('1');
      expect(forms[0]!.get('InstanceMarketOptions.MarketType')).toBe('spot');
      expect(forms[0]!.get('InstanceInitiatedShutdownBehavior')).toBe('terminate');
      expect(forms[0]!.get('UserData')).toBeNull();
      const ec2 = await describeOne(instance.providerId!);
      expect(ec2.InstanceType).toBe('t3.small');
      expect(ec2.SubnetId).toBe(world.subnetIds[1]);
      expect(ec2.InstanceLifecycle).toBe('spot');
    });

    it('is idempotent on the name: twice in a row and twice at once launch one instance', async () => {
      const fleet = unique('f-idem');
      const { provider: p } = provider(factory(), imageBlock(), fleet);
      const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
      await reset();
      const first = await p.create(spec, signal());
      const second = await p.create(spec, signal());
      expect(second).toEqual(first);
      const racing = track(tokenSpec(unique('race'), fleet, 'linux'));
      const both = await Promise.all([p.create(racing, signal()), p.create(racing, signal())]);
      expect(both[0]).toEqual(both[1]);
      expect(proxy.count('RunInstances')).toBe(2);
      expect(proxy.count('PutParameter')).toBe(2);
      expect(await instancesNamed(spec.name)).toHaveLength(1);
      expect(await instancesNamed(racing.name)).toHaveLength(1);
    });

    it('after a restart, a retried create of a listed runner launches nothing and writes a lost parameter again', async () => {
      const fleet = unique('f-restart');
      const block = imageBlock();
      const before = provider(factory(), block, fleet).provider;
      const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
      const original = await before.create(spec, signal());
      // The crash came between the launch and the parameter write: the parameter is not there.
      const name = `${before.parameterPrefix}/${original.providerId}`;
      await world.ssm.send(new DeleteParameterCommand({ Name: name }));

      const after = provider(factory(), block, fleet).provider;
      await reset();
      const listed = await after.list({ fleet, scaleSet: 'linux' }, signal());
      expect(listed.map((i) => i.providerId)).toEqual([original.providerId]);
      expect(proxy.count('DescribeInstances')).toBe(1);
      await reset(); // the first list of a process also collects stray parameters, in the background
      const again = await after.create(spec, signal());
      expect(again.providerId).toBe(original.providerId);
      expect(again.createdAt).toBe(listed[0]!.createdAt);
      expect(proxy.counts).toEqual({ PutParameter: 1 });
      expect(decodeRunnerParameter((await parameter(name))!.Value!)).toEqual({
        mode: 'jit',
        jitConfig: secretOf(spec),
      });
      // Known and written now: another retry costs nothing.
      await reset();
      await after.create(spec, signal());
      expect(proxy.counts).toEqual({});
      expect(await instancesNamed(spec.name)).toHaveLength(1);
    });

    it('refuses a name that cannot be a runner name, without a call', async () => {
      const fleet = unique('f-name');
      const { provider: p } = provider(factory(), imageBlock(), fleet);
      await reset();
      const spec = track(jitSpec('bad/name', fleet, 'linux'));
      const error = await failure(p.create(spec, signal()));
      expect(error).toMatchObject({ code: 'invalid-name', retryable: false });
      expect(proxy.counts).toEqual({});
    });
  });

  describe('list', () => {
    it('one paginated DescribeInstances per resync for all scale sets of the fleet, each keeping its own', async () => {
      const fleet = unique('f-list');
      const made = factory({ timings: { pageSize: 5, reuseMs: 300 } });
      const sets = ['small', 'medium', 'large'];
      const providers = sets.map((set) => provider(made, imageBlock(), fleet, set).provider);
      const created = new Map<string, string[]>(sets.map((s) => [s, []]));
      for (let i = 0; i < 12; i++) {
        const set = sets[i % 3]!;
        const instance = await providers[i % 3]!.create(track(jitSpec(unique(set), fleet, set)), signal());
        created.get(set)!.push(instance.name);
      }
      // Another fleet's instance in the same region is neither listed nor counted in the pages.
      const otherFleet = unique('f-other');
      const other = provider(made, imageBlock(), otherFleet).provider;
      await other.create(track(jitSpec(unique('stranger'), otherFleet, 'linux')), signal());

      await new Promise((r) => setTimeout(r, 400)); // older than reuseMs: the next resync lists afresh
      await reset();
      const fetchesBefore = made.stats.listFetches;
      const pagesBefore = made.stats.describePages;
      const lists = await Promise.all(
        providers.map((p, i) => p.list({ fleet, scaleSet: sets[i]! }, signal())),
      );
      expect(made.stats.listFetches - fetchesBefore).toBe(1);
      expect(proxy.count('DescribeInstances')).toBe(made.stats.describePages - pagesBefore);
      expect(proxy.count('DescribeInstances')).toBe(3); // 12 instances, 5 a page
      lists.forEach((instances, i) => {
        expect(instances.map((x) => x.name).sort()).toEqual(created.get(sets[i]!)!.sort());
        expect(instances.every((x) => x.fleet === fleet && x.scaleSet === sets[i])).toBe(true);
        expect(instances.every((x) => x.state === 'running' && x.providerId?.startsWith('i-'))).toBe(true);
      });

      // A resync right after is served from the same list; the whole fleet without a scale set too.
      const all = await providers[0]!.list({ fleet }, signal());
      expect(all).toHaveLength(12);
      expect(proxy.count('DescribeInstances')).toBe(3);
    });

    it('a list joined or reused after a create or delete already shows them', async () => {
      const fleet = unique('f-fresh');
      const made = factory({ timings: { reuseMs: 60_000 } });
      const { provider: p } = provider(made, imageBlock(), fleet);
      expect(await p.list({ fleet }, signal())).toEqual([]);
      const a = await p.create(track(jitSpec(unique('a'), fleet, 'linux')), signal());
      await reset();
      expect((await p.list({ fleet }, signal())).map((i) => i.name)).toEqual([a.name]);
      await p.delete(a.name, signal());
      expect(await p.list({ fleet }, signal())).toEqual([]);
      expect(proxy.count('DescribeInstances')).toBe(0);
    });

    it('maps what ended an instance: its own exit code, the EC2 API, a stop', async () => {
      const fleet = unique('f-state');
      const { provider: p } = provider(factory(), imageBlock(), fleet);
      const ok = await p.create(track(jitSpec(unique('ok'), fleet, 'linux')), signal());
      const bad = await p.create(track(jitSpec(unique('bad'), fleet, 'linux')), signal());
      const killed = await p.create(track(jitSpec(unique('killed'), fleet, 'linux')), signal());
      const stopped = await p.create(track(jitSpec(unique('stopped'), fleet, 'linux')), signal());
      await world.ec2.send(
        new CreateTagsCommand({ Resources: [ok.providerId!], Tags: [{ Key: TAG_EXIT_CODE, Value: '0' }] }),
      );
      await world.ec2.send(
        new CreateTagsCommand({ Resources: [bad.providerId!], Tags: [{ Key: TAG_EXIT_CODE, Value: '3' }] }),
      );
      await world.ec2.send(
        new TerminateInstancesCommand({ InstanceIds: [ok.providerId!, bad.providerId!, killed.providerId!] }),
      );
      await world.ec2.send(new StopInstancesCommand({ InstanceIds: [stopped.providerId!] }));
      await new Promise((r) => setTimeout(r, 600));
      const byName = new Map((await p.list({ fleet }, signal())).map((i) => [i.name, i]));
      expect(byName.get(ok.name)).toMatchObject({ state: 'succeeded' });
      expect(byName.get(bad.name)).toMatchObject({ state: 'failed', message: 'runner exited with code 3' });
      expect(byName.get(killed.name)?.state).toBe('failed');
      expect(byName.get(killed.name)?.message).toContain('Client.UserInitiatedShutdown');
      expect(byName.get(stopped.name)?.state).toBe('failed');
      expect(byName.get(stopped.name)?.message).toContain('stopped');
    });

    it('reports a spot interruption once, as a failed instance and a notice', async () => {
      const fleet = unique('f-interrupt');
      const { provider: p, seen } = provider(
        factory({ timings: { reuseMs: 0 } }),
        imageBlock({ capacity: 'spot' }),
        fleet,
      );
      const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
      const instance = await p.create(spec, signal());
      await world.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.providerId!] }));
      // moto cannot interrupt a spot instance: its answer is rewritten to what EC2 says after an interruption.
      const interrupted = (body: string) =>
        body.replaceAll('Client.UserInitiatedShutdown', 'Server.SpotInstanceTermination');
      proxy.inject({ action: 'DescribeInstances', times: 2, rewrite: interrupted });
      for (let i = 0; i < 2; i++) {
        const [listed] = await p.list({ fleet, scaleSet: 'linux' }, signal());
        expect(listed).toMatchObject({
          name: spec.name,
          state: 'failed',
          message: 'spot instance interrupted by AWS (Server.SpotInstanceTermination)',
          interrupted: true,
        });
      }
      expect(seen.notices).toEqual([
        {
          event: 'spot-interruption',
          instance: spec.name,
          message: expect.stringContaining(`spot instance ${instance.providerId} of runner ${spec.name}`),
        },
      ]);
    });

    it('an instance that tagged itself interrupted: failed, interrupted, one notice; the tag means nothing while it runs', async () => {
      const fleet = unique('f-noticed');
      const { provider: p, seen } = provider(
        factory({ timings: { reuseMs: 0 } }),
        imageBlock({ capacity: 'spot' }),
        fleet,
      );
      const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
      const instance = await p.create(spec, signal());
      await world.ec2.send(
        new CreateTagsCommand({
          Resources: [instance.providerId!],
          Tags: [{ Key: TAG_EXIT_CODE, Value: 'interrupted' }],
        }),
      );
      const [running] = await p.list({ fleet, scaleSet: 'linux' }, signal());
      expect(['pending', 'running']).toContain(running?.state);
      expect(running?.interrupted).toBeUndefined();
      expect(running?.message).toBeUndefined();
      expect(seen.notices).toEqual([]);
      await world.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.providerId!] }));
      for (let i = 0; i < 2; i++) {
        const [ended] = await p.list({ fleet, scaleSet: 'linux' }, signal());
        expect(ended).toMatchObject({ state: 'failed', interrupted: true });
        expect(ended?.message).toContain('saw the interruption notice');
      }
      expect(seen.notices.map((n) => n.event)).toEqual(['spot-interruption']);
      expect(seen.notices[0]?.message).toContain('its interruption notice');
    });
  });

  it('a registration too large for a standard parameter goes to the advanced tier', async () => {
    const fleet = unique('f-large');
    const { provider: p } = provider(factory(), imageBlock(), fleet);
    const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
    const jitConfig = Buffer.from('x'.repeat(3600)).toString('base64') + secretOf(spec);
    const large: InstanceSpec = { ...spec, registration: { mode: 'jit', jitConfig } };
    track(large);
    const instance = await p.create(large, signal());
    const stored = await parameter(`${p.parameterPrefix}/${instance.providerId}`);
    expect(stored?.Value?.length).toBeGreaterThan(4096);
    expect(decodeRunnerParameter(stored!.Value!)).toEqual({ mode: 'jit', jitConfig });
  });

  describe('delete', () => {
    it('terminates and deletes the parameter, idempotently; 4 AWS calls over a runner’s life', async () => {
      const fleet = unique('f-delete');
      const { provider: p } = provider(factory(), imageBlock(), fleet);
      const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
      await reset();
      const instance = await p.create(spec, signal());
      await p.delete(spec.name, signal());
      expect(proxy.counts).toEqual({
        RunInstances: 1,
        PutParameter: 1,
        TerminateInstances: 1,
        DeleteParameter: 1,
      });
      expect((await describeOne(instance.providerId!)).State?.Name).toBe('terminated');
      expect(await parameter(`${p.parameterPrefix}/${instance.providerId}`)).toBeUndefined();
      expect((await p.list({ fleet }, signal())).map((i) => i.name)).not.toContain(spec.name);

      await reset();
      await p.delete(spec.name, signal()); // unknown now: one lookup finds it terminated
      await p.delete(unique('never-created'), signal());
      expect(proxy.count('TerminateInstances')).toBe(0);
      expect(proxy.count('DescribeInstances')).toBe(2);
    });

    it('after a restart, finds the instance by its runner tag', async () => {
      const fleet = unique('f-del-restart');
      const block = imageBlock();
      const spec = track(tokenSpec(unique('runner'), fleet, 'linux'));
      const instance = await provider(factory(), block, fleet).provider.create(spec, signal());
      const fresh = provider(factory(), block, fleet).provider;
      await reset();
      await fresh.delete(spec.name, signal());
      expect(proxy.counts).toEqual({ DescribeInstances: 1, TerminateInstances: 1, DeleteParameter: 1 });
      expect((await describeOne(instance.providerId!)).State?.Name).toBe('terminated');
      expect(await parameter(`${fresh.parameterPrefix}/${instance.providerId}`)).toBeUndefined();
    });

    it('an instance already gone and a parameter already deleted are success', async () => {
      const fleet = unique('f-del-gone');
      const { provider: p } = provider(factory(), imageBlock(), fleet);
      const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
      await p.create(spec, signal());
      proxy.inject({ action: 'TerminateInstances', error: { code: 'InvalidInstanceID.NotFound' } });
      proxy.inject({ action: 'DeleteParameter', error: { code: 'ParameterNotFound' } });
      await p.delete(spec.name, signal());
      expect(proxy.injected).toMatchObject({ TerminateInstances: 1, DeleteParameter: 1 });
    });
  });

  describe('parameter garbage collection', () => {
    it('deletes the parameters of instances that are gone, on a list at most every gcInterval', async () => {
      const fleet = unique('f-gc');
      let offset = 0;
      const made = factory({
        now: () => Date.now() + offset,
        timings: { gcIntervalMs: 5 * 60_000, gcMinAgeMs: 0, reuseMs: 0 },
      });
      const { provider: p } = provider(made, imageBlock(), fleet);
      const live = await p.create(track(jitSpec(unique('live'), fleet, 'linux')), signal());
      const dead = await p.create(track(jitSpec(unique('dead'), fleet, 'linux')), signal());
      // A crash between TerminateInstances and DeleteParameter, and a parameter whose instance never existed.
      await world.ec2.send(new TerminateInstancesCommand({ InstanceIds: [dead.providerId!] }));
      const prefix = p.parameterPrefix;
      const put = (name: string) =>
        world.ssm.send(new PutParameterCommand({ Name: name, Value: 'stale', Type: 'SecureString' }));
      await put(`${prefix}/i-0123456789abcdef0`);
      await put(`${prefix}/not-an-instance`);
      for (let i = 0; i < 11; i++) await put(`${prefix}/i-00000000000000${i.toString(16).padStart(3, '0')}`);

      offset += 6 * 60_000; // the first list of this factory already ran a GC (at create time nothing was stale)
      await reset();
      await p.list({ fleet }, signal());
      await made.settled();
      const names = async () => {
        const found: string[] = [];
        let token: string | undefined;
        do {
          const page = await world.ssm.send(
            new GetParametersByPathCommand({ Path: prefix, NextToken: token }),
          );
          found.push(...(page.Parameters ?? []).map((x) => x.Name!));
          token = page.NextToken;
        } while (token);
        return found.sort();
      };
      expect(await names()).toEqual([`${prefix}/${live.providerId}`, `${prefix}/not-an-instance`].sort());
      // 15 parameters: 2 pages of 10; 13 stale: 2 DeleteParameters of at most 10.
      expect(proxy.count('GetParametersByPath')).toBe(2);
      expect(proxy.count('DeleteParameters')).toBe(2);
      expect(made.stats.parametersCollected).toBeGreaterThanOrEqual(13);

      // Within the interval, a list does not look again.
      await put(`${prefix}/i-0fedcba9876543210`);
      await reset();
      await p.list({ fleet }, signal());
      await made.settled();
      expect(proxy.count('GetParametersByPath')).toBe(0);
      // collectParameters() runs it on demand.
      const result = await p.collectParameters(signal());
      expect(result).toMatchObject({ deleted: 1 });
      expect(await names()).toEqual([`${prefix}/${live.providerId}`, `${prefix}/not-an-instance`].sort());
    });

    it('keeps a parameter written since the list began (gcMinAge)', async () => {
      const fleet = unique('f-gc-young');
      const made = factory({ timings: { gcMinAgeMs: 10 * 60_000 } });
      const { provider: p } = provider(made, imageBlock(), fleet);
      const name = `${p.parameterPrefix}/i-0aaaaaaaaaaaaaaaa`;
      await world.ssm.send(new PutParameterCommand({ Name: name, Value: 'young', Type: 'SecureString' }));
      expect(await p.collectParameters(signal())).toEqual({ examined: 1, deleted: 0 });
      expect(await parameter(name)).toBeDefined();
    });
  });

  describe('spot failover', () => {
    it('RunInstances refused for spot capacity: the same create goes on-demand once, with a notice', async () => {
      const fleet = unique('f-spot-run');
      const { provider: p, seen } = provider(factory(), imageBlock({ capacity: 'spot' }), fleet);
      const forms: URLSearchParams[] = [];
      proxy.inject({ action: 'RunInstances', times: Infinity, when: (r) => (forms.push(r.form), false) });
      proxy.inject({
        action: 'RunInstances',
        when: (r) => r.form.get('InstanceMarketOptions.MarketType') === 'spot',
        error: {
          code: 'InsufficientInstanceCapacity',
          message: 'We currently do not have sufficient t3.micro capacity.',
        },
      });
      const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
      const instance = await p.create(spec, signal());
      expect(forms).toHaveLength(2);
      expect(forms[0]!.get('InstanceMarketOptions.MarketType')).toBe('spot');
      expect(forms[1]!.get('InstanceMarketOptions.MarketType')).toBeNull();
      expect(forms[1]!.get('ClientToken')).not.toBe(forms[0]!.get('ClientToken'));
      expect((await describeOne(instance.providerId!)).InstanceLifecycle).toBeUndefined();
      expect(seen.notices).toEqual([
        {
          event: 'spot-fallback',
          instance: spec.name,
          message: expect.stringContaining('InsufficientInstanceCapacity'),
        },
      ]);
      expect(seen.logs.text()).toContain('falling back to on-demand');
      expect(p.stats.spotFallbacks).toBeGreaterThanOrEqual(1);
    });

    it('CreateFleet answering 200 with a spot capacity error: on-demand with the same overrides', async () => {
      const fleet = unique('f-spot-fleet');
      const { provider: p, seen } = provider(
        factory(),
        templateBlock({ capacity: 'spot', allocationStrategy: 'capacity-optimized' }),
        fleet,
      );
      const forms: URLSearchParams[] = [];
      proxy.inject({ action: 'CreateFleet', times: Infinity, when: (r) => (forms.push(r.form), false) });
      proxy.inject({
        action: 'CreateFleet',
        when: (r) => r.form.get('TargetCapacitySpecification.DefaultTargetCapacityType') === 'spot',
        fleetError: { code: 'InsufficientInstanceCapacity' },
      });
      await reset();
      const spec = track(tokenSpec(unique('runner'), fleet, 'linux'));
      const instance = await p.create(spec, signal());
      expect(proxy.injected).toEqual({ CreateFleet: 1 });
      expect(forms.map((f) => f.get('TargetCapacitySpecification.DefaultTargetCapacityType'))).toEqual([
        'spot',
        'on-demand',
      ]);
      expect(forms[0]!.get('SpotOptions.AllocationStrategy')).toBe('capacity-optimized');
      expect(forms[1]!.get('OnDemandOptions.AllocationStrategy')).toBe('lowest-price');
      expect(forms[1]!.get('LaunchTemplateConfigs.1.Overrides.4.InstanceType')).toBe('t3.medium');
      expect((await describeOne(instance.providerId!)).InstanceLifecycle).toBeUndefined();
      expect(seen.notices.map((n) => n.event)).toEqual(['spot-fallback']);
    });

    it('with failover off, the capacity error is a retryable ProviderError naming the call', async () => {
      const fleet = unique('f-spot-off');
      for (const [block, action] of [
        [imageBlock({ capacity: 'spot', onDemandFailover: false }), 'RunInstances'],
        [templateBlock({ capacity: 'spot', onDemandFailover: false }), 'CreateFleet'],
      ] as const) {
        const { provider: p, seen } = provider(factory(), block, fleet);
        await reset();
        proxy.inject(
          action === 'RunInstances'
            ? { action, error: { code: 'InsufficientInstanceCapacity' } }
            : { action, fleetError: { code: 'InsufficientInstanceCapacity' } },
        );
        const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
        const error = await failure(p.create(spec, signal()));
        expect(error).toMatchObject({ code: 'aws-capacity', retryable: true });
        expect(error.message).toMatch(
          new RegExp(`^${action} \\(runner ${spec.name}\\): InsufficientInstanceCapacity`),
        );
        expect(proxy.count(action)).toBe(1);
        expect(proxy.count('PutParameter')).toBe(0);
        expect(seen.notices).toEqual([]);
        expectNoSecret(error, secretOf(spec));
      }
    });

    it('a code not in the failover list is not retried on-demand', async () => {
      const fleet = unique('f-spot-list');
      const block = imageBlock({ capacity: 'spot', onDemandFailover: ['SpotMaxPriceTooLow'] });
      const { provider: p } = provider(factory(), block, fleet);
      await reset();
      proxy.inject({ action: 'RunInstances', error: { code: 'InsufficientInstanceCapacity' } });
      const error = await failure(p.create(track(jitSpec(unique('runner'), fleet, 'linux')), signal()));
      expect(error.code).toBe('aws-capacity');
      expect(proxy.count('RunInstances')).toBe(1);
    });
  });

  describe('errors', () => {
    it('RequestLimitExceeded: the SDK retries once, then a retryable aws-throttled error naming RunInstances', async () => {
      const fleet = unique('f-throttle');
      const { provider: p } = provider(factory(), imageBlock(), fleet);
      await reset();
      proxy.inject({
        action: 'RunInstances',
        times: 2,
        error: { code: 'RequestLimitExceeded', message: 'Request limit exceeded.', status: 503 },
      });
      const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
      const error = await failure(p.create(spec, signal()));
      expect(error).toMatchObject({ code: 'aws-throttled', retryable: true });
      expect(error.message).toMatch(/^RunInstances \(runner .*\): RequestLimitExceeded \[HTTP 503\]/);
      expect(proxy.count('RunInstances')).toBe(2);
      expect(p.stats.calls.RunInstances).toBeGreaterThan(0);
      expectNoSecret(error, secretOf(spec));

      // Once the limit clears, the retried create launches.
      const instance = await p.create(spec, signal());
      expect(instance.state).toBe('pending');
    });

    it('UnauthorizedOperation is fatal aws-access-denied', async () => {
      const fleet = unique('f-denied');
      const { provider: p } = provider(factory({ maxAttempts: 1 }), imageBlock(), fleet);
      proxy.inject({
        action: 'RunInstances',
        error: {
          code: 'UnauthorizedOperation',
          message: 'You are not authorized to perform this operation.',
          status: 403,
        },
      });
      const error = await failure(p.create(track(jitSpec(unique('runner'), fleet, 'linux')), signal()));
      expect(error).toMatchObject({ code: 'aws-access-denied', retryable: false });
    });

    it('PutParameter failing after the launch terminates the instance; the retry launches anew', async () => {
      const fleet = unique('f-put-fail');
      const { provider: p } = provider(factory({ maxAttempts: 1 }), imageBlock(), fleet);
      const spec = track(jitSpec(unique('runner'), fleet, 'linux'));
      // A validation error that quotes the value it was sent, as SSM's do.
      proxy.inject({
        action: 'PutParameter',
        error: {
          code: 'ValidationException',
          message: `1 validation error detected: Value '${secretOf(spec)}' at 'value' failed to satisfy constraint`,
        },
      });
      const error = await failure(p.create(spec, signal()));
      expect(error).toMatchObject({ code: 'aws-invalid', retryable: false });
      expect(error.message).toMatch(/^PutParameter \(\/runner-fleet\/.*\/i-[0-9a-f]+\): ValidationException/);
      expectNoSecret(error, secretOf(spec));
      const [first] = await instancesNamed(spec.name);
      expect(first?.State?.Name).toBe('terminated');

      const retried = await p.create(spec, signal());
      expect(retried.providerId).not.toBe(first!.InstanceId);
      expect(await parameter(`${p.parameterPrefix}/${retried.providerId}`)).toBeDefined();
      expect((await p.list({ fleet }, signal())).map((i) => i.providerId)).toEqual([retried.providerId]);
    });

    it('SSM ThrottlingException (JSON __type) on PutParameter is aws-throttled', async () => {
      const fleet = unique('f-ssm-throttle');
      const { provider: p } = provider(factory({ maxAttempts: 1 }), imageBlock(), fleet);
      proxy.inject({
        action: 'PutParameter',
        error: { code: 'ThrottlingException', message: 'Rate exceeded' },
      });
      const error = await failure(p.create(track(tokenSpec(unique('runner'), fleet, 'linux')), signal()));
      expect(error).toMatchObject({ code: 'aws-throttled', retryable: true });
      expect(error.message).toContain('PutParameter');
    });

    it('a failing DescribeInstances fails every joined list once, and the next resync lists again', async () => {
      const fleet = unique('f-list-fail');
      const made = factory({ maxAttempts: 1, timings: { reuseMs: 0 } });
      const a = provider(made, imageBlock(), fleet, 'a').provider;
      const b = provider(made, imageBlock(), fleet, 'b').provider;
      await reset();
      proxy.inject({
        action: 'DescribeInstances',
        delayMs: 200,
        error: { code: 'InternalError', status: 500 },
      });
      const results = await Promise.allSettled([
        a.list({ fleet, scaleSet: 'a' }, signal()),
        b.list({ fleet, scaleSet: 'b' }, signal()),
      ]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      const reason = (results[0] as PromiseRejectedResult).reason as ProviderError;
      expect(reason).toMatchObject({ code: 'aws-server-error', retryable: true });
      expect(proxy.count('DescribeInstances')).toBe(1);
      expect(await a.list({ fleet, scaleSet: 'a' }, signal())).toEqual([]);
    });

    it('an unreachable endpoint is a retryable error', async () => {
      const made = createEc2ProviderFactory({
        endpoint: 'http://127.0.0.1:1',
        credentials: MOTO_CREDENTIALS,
        renderUserData: () => START_SCRIPT,
        maxAttempts: 1,
      });
      factories.push(made);
      const seen = observedContext('f-unreachable', 'linux');
      observed.push(seen);
      const p = made.create(imageBlock(), seen.context);
      const spec = track(jitSpec(unique('runner'), 'f-unreachable', 'linux'));
      const error = await failure(p.create(spec, signal()));
      expect(error.retryable).toBe(true);
      expect(error.code).toBe('aws-unreachable');
      expectNoSecret(error, secretOf(spec));
    });
  });

  describe('prepare', () => {
    it('passes for a good launch template and existing subnets', async () => {
      const { provider: p } = provider(factory(), templateBlock(), unique('f-prep-ok'));
      await p.prepare(signal());
      const { provider: q } = provider(factory(), imageBlock(), unique('f-prep-ok'));
      await q.prepare(signal());
    });

    it('names a missing launch template', async () => {
      const block = templateBlock({ launchTemplate: { name: 'no-such-template' } });
      const error = await failure(provider(factory(), block, unique('f-prep')).provider.prepare(signal()));
      expect(error).toMatchObject({ code: 'ec2-prepare-failed', retryable: false });
      expect(error.message).toContain(
        'launch template no-such-template version $Default does not exist in eu-west-1',
      );
    });

    it('names what a template lacks: IMDSv2, terminate on shutdown, instance profile, user data', async () => {
      const block = templateBlock({ launchTemplate: { name: LOOSE_TEMPLATE } });
      const error = await failure(provider(factory(), block, unique('f-prep')).provider.prepare(signal()));
      expect(error.message).toContain('must require IMDSv2 (MetadataOptions.HttpTokens: required)');
      expect(error.message).toContain(
        'must terminate on shutdown (InstanceInitiatedShutdownBehavior: terminate)',
      );
      expect(error.message).toContain('has no IamInstanceProfile');
      expect(error.message).toContain('has no UserData');
    });

    it('names exactly the missing subnets, security groups and image', async () => {
      const block = imageBlock({
        imageId: 'ami-0000000000000dead',
        subnetIds: ['subnet-0000000000000dead'],
        securityGroupIds: [world.securityGroupId, 'sg-0000000000000dead'],
      });
      const error = await failure(provider(factory(), block, unique('f-prep')).provider.prepare(signal()));
      expect(error.message).toContain('subnets not found in eu-west-1: subnet-0000000000000dead');
      expect(error.message).toContain('security groups not found in eu-west-1: sg-0000000000000dead');
      expect(error.message).not.toContain(world.securityGroupId);
      expect(error.message).toContain('image not found in eu-west-1: ami-0000000000000dead');
    });

    it('refuses an imageId block when no start script renderer is configured', async () => {
      const made = factory({ renderUserData: undefined });
      const seen = observedContext('f-no-ud', 'linux');
      const error = await failure(made.create(imageBlock(), seen.context).prepare(signal()));
      expect(error).toMatchObject({ code: 'ec2-no-user-data', retryable: false });
    });

    it('renders the start script once: a setting the renderer refuses fails prepare, naming it', async () => {
      const made = factory({
        renderUserData: () => {
          throw new UserDataError('bad-user-data-setting', 'userData.runAs: must be a Linux user name');
        },
      });
      const seen = observedContext('f-bad-ud', 'linux');
      const error = await failure(made.create(imageBlock(), seen.context).prepare(signal()));
      expect(error).toMatchObject({ code: 'ec2-prepare-failed', retryable: false });
      expect(error.message).toContain('userData.runAs: must be a Linux user name');
      // The real renderer, with the block's settings, passes.
      const real = factory({ renderUserData: renderEc2UserData });
      const block = imageBlock({ userData: { runAs: 'runner', parameterTimeout: '2m' } });
      await real.create(block, observedContext('f-good-ud', 'linux').context).prepare(signal());
    });
  });

  it('leaves no secret in what create() and list() return across modes', async () => {
    const fleet = unique('f-secrets');
    const { provider: p } = provider(factory(), templateBlock(), fleet);
    const returned: Instance[] = [];
    for (const make of [jitSpec, tokenSpec]) {
      const spec = track(make(unique('runner'), fleet, 'linux'));
      returned.push(await p.create(spec, signal()), await p.create(spec, signal()));
    }
    returned.push(...(await p.list({ fleet }, signal())));
    for (const secret of secrets) expectNoSecret(returned, secret);
  });
});
