/** The AWS peer itself: moto answers EC2, SSM and STS on loopback, as the EC2 suites expect. */
import { DescribeRegionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOTO_ACCOUNT, MOTO_CREDENTIALS, requireAwsPeers, startMoto } from '../support/moto.js';
import type { MotoServer } from '../support/moto.js';

describe.skipIf(!requireAwsPeers('aws/moto'))('moto test peer', () => {
  let moto: MotoServer;
  beforeAll(async () => {
    moto = await startMoto();
  });
  afterAll(async () => {
    await moto?.stop();
  });

  it('serves EC2 and STS on 127.0.0.1 with moto account', async () => {
    expect(new URL(moto.url).hostname).toBe('127.0.0.1');
    const base = { region: 'eu-west-1', endpoint: moto.url, credentials: MOTO_CREDENTIALS };
    const identity = await new STSClient(base).send(new GetCallerIdentityCommand({}));
    expect(identity.Account).toBe(MOTO_ACCOUNT);
    const regions = await new EC2Client(base).send(new DescribeRegionsCommand({}));
    expect(regions.Regions?.map((r) => r.RegionName)).toContain('eu-west-1');
  });
});
