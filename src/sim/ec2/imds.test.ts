import { afterEach, describe, expect, it } from 'vitest';
import { startImds } from './imds.js';
import type { ImdsOptions, ImdsServer } from './imds.js';

const servers: ImdsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function imds(options: Partial<ImdsOptions> = {}): Promise<ImdsServer> {
  const server = await startImds({ instanceId: 'i-0123456789abcdef0', region: 'eu-west-1', ...options });
  servers.push(server);
  return server;
}

async function token(server: ImdsServer, ttl = '60'): Promise<string> {
  const response = await fetch(`${server.url}/latest/api/token`, {
    method: 'PUT',
    headers: { 'X-aws-ec2-metadata-token-ttl-seconds': ttl },
  });
  expect(response.status).toBe(200);
  expect(response.headers.get('x-aws-ec2-metadata-token-ttl-seconds')).toBe(ttl);
  return response.text();
}

async function get(server: ImdsServer, path: string, session?: string) {
  const response = await fetch(`${server.url}/latest/${path}`, {
    headers: session === undefined ? {} : { 'X-aws-ec2-metadata-token': session },
  });
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type') };
}

describe('IMDSv2 stand-in', () => {
  it('listens on 127.0.0.1 and answers the instance identity with a session token', async () => {
    const server = await imds({ availabilityZone: 'eu-west-1b' });
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
    const t = await token(server);
    expect(await get(server, 'meta-data/instance-id', t)).toMatchObject({
      status: 200,
      body: 'i-0123456789abcdef0',
    });
    expect((await get(server, 'meta-data/placement/region', t)).body).toBe('eu-west-1');
    expect((await get(server, 'meta-data/placement/availability-zone', t)).body).toBe('eu-west-1b');
    expect(server.stats).toMatchObject({ tokens: 1, served: 3, unauthorized: 0 });
  });

  it('requires a token (HttpTokens=required): none, an unknown one or an expired one is 401', async () => {
    let clock = 1_000_000;
    const server = await imds({ now: () => clock });
    expect((await get(server, 'meta-data/instance-id')).status).toBe(401);
    expect((await get(server, 'meta-data/instance-id', 'made-up')).status).toBe(401);
    const t = await token(server, '2');
    expect((await get(server, 'meta-data/instance-id', t)).status).toBe(200);
    clock += 2_000;
    expect((await get(server, 'meta-data/instance-id', t)).status).toBe(401);
    expect(server.stats.unauthorized).toBe(3);
  });

  it('refuses a token request without a valid TTL (400), through a proxy (403), or by GET (405)', async () => {
    const server = await imds();
    const put = (headers: Record<string, string>) =>
      fetch(`${server.url}/latest/api/token`, { method: 'PUT', headers }).then((r) => r.status);
    expect(await put({})).toBe(400);
    expect(await put({ 'X-aws-ec2-metadata-token-ttl-seconds': '0' })).toBe(400);
    expect(await put({ 'X-aws-ec2-metadata-token-ttl-seconds': '21601' })).toBe(400);
    expect(await put({ 'X-aws-ec2-metadata-token-ttl-seconds': 'soon' })).toBe(400);
    expect(await put({ 'X-aws-ec2-metadata-token-ttl-seconds': '21600' })).toBe(200);
    expect(await put({ 'X-aws-ec2-metadata-token-ttl-seconds': '60', 'X-Forwarded-For': '10.0.0.1' })).toBe(
      403,
    );
    expect((await fetch(`${server.url}/latest/api/token`)).status).toBe(405);
  });

  it('serves the role credentials in the shape the AWS SDKs read', async () => {
    const server = await imds({
      role: {
        name: 'runner-role',
        accessKeyId: 'AKIAEXAMPLE',
        secretAccessKey: 'secret-key',
        sessionToken: 'st',
      },
      now: () => Date.parse('2030-01-01T00:00:00.123Z'),
    });
    const t = await token(server);
    expect(await get(server, 'meta-data/iam/security-credentials/', t)).toMatchObject({
      status: 200,
      body: 'runner-role',
    });
    const credentials = await get(server, 'meta-data/iam/security-credentials/runner-role', t);
    expect(credentials.type).toBe('application/json');
    expect(JSON.parse(credentials.body)).toEqual({
      Code: 'Success',
      LastUpdated: '2030-01-01T00:00:00Z',
      Type: 'AWS-HMAC',
      AccessKeyId: 'AKIAEXAMPLE',
      SecretAccessKey: 'secret-key',
      Token: 'st',
      Expiration: '2030-01-01T06:00:00Z',
    });
    expect((await get(server, 'meta-data/iam/security-credentials/other-role', t)).status).toBe(404);
  });

  it('has no credentials without an instance profile', async () => {
    const server = await imds();
    const t = await token(server);
    expect((await get(server, 'meta-data/iam/security-credentials/', t)).status).toBe(404);
  });

  it('shows a spot interruption notice only once one is scheduled', async () => {
    const server = await imds();
    const t = await token(server);
    expect((await get(server, 'meta-data/spot/instance-action', t)).status).toBe(404);
    server.scheduleInterruption(new Date('2030-01-01T00:02:00.500Z'));
    const notice = await get(server, 'meta-data/spot/instance-action', t);
    expect(notice.status).toBe(200);
    expect(JSON.parse(notice.body)).toEqual({ action: 'terminate', time: '2030-01-01T00:02:00Z' });
    server.scheduleInterruption(new Date('2030-01-01T00:05:00Z'), 'stop');
    expect(JSON.parse((await get(server, 'meta-data/spot/instance-action', t)).body).action).toBe('stop');
  });

  it('serves the user data as it is, and 404 for an instance without any or an unknown path', async () => {
    const withData = await imds({ userData: '#!/bin/bash\necho hi\n' });
    const t = await token(withData);
    expect((await get(withData, 'user-data', t)).body).toBe('#!/bin/bash\necho hi\n');
    expect((await get(withData, 'meta-data/no-such-thing', t)).status).toBe(404);
    const without = await imds();
    expect((await get(without, 'user-data', await token(without))).status).toBe(404);
  });
});
