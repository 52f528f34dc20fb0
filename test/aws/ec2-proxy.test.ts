/**
 * The ec2 provider behind an egress proxy: the AWS SDK ignores HTTPS_PROXY / HTTP_PROXY on its own, so the ec2
 * module hands its clients agents built from the command's environment. Against moto through a forward proxy
 * process (test/support/connect-proxy.ts): the provider's calls (RunInstances, DescribeInstances, SSM, Terminate)
 * go through the proxy's tunnel, and NO_PROXY sends them direct.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetConfig } from '../../src/core/fleet-config.js';
import { ec2Module } from '../../src/providers/ec2/module.js';
import { ec2ProviderSchema } from '../../src/providers/ec2/schema.js';
import type { ConnectProxy } from '../support/connect-proxy.js';
import { startConnectProxy } from '../support/connect-proxy.js';
import type { MotoServer } from '../support/moto.js';
import { MOTO_CREDENTIALS, requireAwsPeers, startMoto } from '../support/moto.js';
import type { AwsWorld } from './ec2-fixtures.js';
import { GOOD_TEMPLATE, REGION, buildAwsWorld, jitSpec, observedContext } from './ec2-fixtures.js';

const FLEET = 'proxied-ec2';
const signal = () => AbortSignal.timeout(60_000);

describe.skipIf(!requireAwsPeers('ec2 through a proxy'))('the ec2 provider through HTTP(S)_PROXY', () => {
  let moto: MotoServer;
  let proxy: ConnectProxy;
  let world: AwsWorld;
  let target: string;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startConnectProxy();
    world = await buildAwsWorld(moto);
    target = new URL(moto.url).host;
    // The SDK's default credential chain reads these, as in a pod with IRSA it would read its token.
    for (const [name, value] of Object.entries({
      AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: 'true',
    })) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
  }, 120_000);

  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    world?.destroy();
    await Promise.all([moto?.stop(), proxy?.close()]);
  });

  async function provider(env: Record<string, string>) {
    const config = ec2ProviderSchema.parse({
      kind: 'ec2',
      region: REGION,
      launchTemplate: { name: GOOD_TEMPLATE },
      instanceTypes: ['t3.small'],
      subnetIds: world.subnetIds.slice(0, 1),
    });
    const factory = await ec2Module.setup({
      fleet: { name: FLEET, scaleSets: [] } as unknown as FleetConfig,
      scaleSets: [],
      env,
      connection: { awsEndpoint: moto.url },
      checkAccess: false,
      logger: pino({ level: 'silent' }),
      signal: signal(),
    });
    const p = factory.create(config, observedContext(FLEET, 'linux').context);
    return { factory, p };
  }

  it('creates, lists and deletes a runner instance with every AWS call through the proxy', async () => {
    const before = proxy.requests.length;
    const { factory, p } = await provider({ HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url });
    const spec = jitSpec(`linux-${Date.now().toString(36)}`, FLEET, 'linux');
    await p.create(spec, signal());
    expect((await p.list({ fleet: FLEET }, signal())).map((i) => i.name)).toContain(spec.name);
    await p.delete(spec.name, signal());
    await factory.close();
    const seen = proxy.requests.slice(before);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((r) => r.method === 'CONNECT' && r.target === target && r.status === 200)).toBe(true);
  });

  it('NO_PROXY exempts the endpoint; without proxy variables the SDK keeps its own agents', async () => {
    const envs: Record<string, string>[] = [{ HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' }, {}];
    for (const env of envs) {
      const before = proxy.requests.length;
      const { factory, p } = await provider(env);
      await p.list({ fleet: FLEET }, signal());
      await factory.close();
      expect(proxy.requests.length, JSON.stringify(env)).toBe(before);
    }
  });

  it('a proxy that refuses the tunnel fails the call with the proxy named', async () => {
    const refusing = await startConnectProxy({ deny: [target] });
    try {
      const { factory, p } = await provider({ HTTP_PROXY: refusing.url });
      const error = await p.list({ fleet: FLEET }, signal()).then(
        () => undefined,
        (e: Error) => e,
      );
      await factory.close();
      const text = `${error?.message} ${String((error?.cause as Error | undefined)?.message ?? '')}`;
      expect(text).toMatch(/refused the tunnel|403/);
      expect(refusing.requests.at(-1)).toMatchObject({ method: 'CONNECT', target, status: 403 });
    } finally {
      await refusing.close();
    }
  });
});
