import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { AwsQueryError, awsQuery, signQuery } from './aws-query.js';

const credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const at = new Date('2015-08-30T12:36:00Z');

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The SDK's hash interface over node:crypto. */
class Sha256 {
  readonly #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.#hash.digest());
  }
}

describe('signQuery', () => {
  it('signs as the AWS SDK signs the same request', async () => {
    const signed = signQuery({
      endpoint: 'http://127.0.0.1:5000',
      region: 'us-east-1',
      service: 'iam',
      credentials,
      action: 'CreateRole',
      version: '2010-05-08',
      params: { RoleName: 'runner-fleet demo', AssumeRolePolicyDocument: '{"a":"b*(c)!"}' },
      now: () => at,
    });
    expect(signed.body).toBe(
      'Action=CreateRole&AssumeRolePolicyDocument=%7B%22a%22%3A%22b%2A%28c%29%21%22%7D&RoleName=runner-fleet%20demo&Version=2010-05-08',
    );
    const sdk = new SignatureV4({
      service: 'iam',
      region: 'us-east-1',
      credentials,
      sha256: Sha256,
      applyChecksum: false,
    });
    const reference = await sdk.sign(
      {
        method: 'POST',
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: 5000,
        path: '/',
        query: {},
        headers: { host: '127.0.0.1:5000', 'content-type': signed.headers['content-type']! },
        body: signed.body,
      },
      { signingDate: at },
    );
    expect(signed.headers['x-amz-date']).toBe('20150830T123600Z');
    expect(signed.headers.authorization).toBe(reference.headers.authorization);
  });
});

describe('awsQuery', () => {
  it("rejects with AWS's error code", async () => {
    const fetchStub = (async () =>
      new Response(
        '<ErrorResponse><Error><Code>EntityAlreadyExists</Code><Message>Role x exists.</Message></Error></ErrorResponse>',
        { status: 409 },
      )) as typeof fetch;
    const call = awsQuery({
      endpoint: 'http://127.0.0.1:1',
      region: 'us-east-1',
      service: 'iam',
      credentials,
      action: 'CreateRole',
      version: '2010-05-08',
      fetch: fetchStub,
    });
    await expect(call).rejects.toBeInstanceOf(AwsQueryError);
    await expect(call).rejects.toMatchObject({ code: 'EntityAlreadyExists', status: 409 });
  });

  it('names the endpoint it cannot reach', async () => {
    await expect(
      awsQuery({
        endpoint: 'http://127.0.0.1:1',
        region: 'us-east-1',
        service: 'iam',
        credentials,
        action: 'ListRoles',
        version: '2010-05-08',
      }),
    ).rejects.toMatchObject({
      code: 'aws-unreachable',
      message: expect.stringContaining('http://127.0.0.1:1'),
    });
  });
});
