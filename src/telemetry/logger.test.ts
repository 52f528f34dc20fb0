import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { childLogger, createLogger } from './logger.js';
import { REDACTED } from './redact.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const text = () => chunks.join('');
  const lines = () =>
    text()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { stream, lines, text };
}

const GHS = 'ghs_16C7e42F292c6912E7710c838347Ae178B4a';
const PAT = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789AB';
const JWT =
  'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDYwMCwiaXNzIjoxfQ.c2lnbmF0dXJlLWJ5dGVz';
const JIT = Buffer.from(
  JSON.stringify({
    '.runner': Buffer.from('{"AgentId":"7","AgentName":"linux-small-x1"}').toString('base64'),
    '.credentials': Buffer.from('{"scheme":"OAuth","data":{"clientId":"c0ffee"}}').toString('base64'),
  }),
).toString('base64');
const PEM =
  '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n-----END RSA PRIVATE KEY-----';

describe('createLogger', () => {
  it('redacts secret properties at any depth, whatever their value looks like', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream });
    log.info(
      {
        token: 'short',
        registration: { token: 'AABF3JGZDX3P5PMEXLND6TS6FCWO6', expiresAt: 1 },
        result: { runner: { name: 'r1' }, encoded_jit_config: 'x', encodedJitConfig: 'y' },
        a: { b: { c: { d: { e: { privateKey: 'k', webhookSecret: 'w', password: 'p' } } } } },
        headers: { authorization: 'token abc', 'x-hub-signature-256': 'sha256=00', accept: 'json' },
      },
      'call',
    );
    const text = out.text();
    for (const secret of [
      'short',
      'AABF3JGZDX3P5PMEXLND6TS6FCWO6',
      '"x"',
      '"y"',
      '"k"',
      '"w"',
      '"p"',
      'token abc',
      'sha256=00',
    ]) {
      expect(text).not.toContain(secret);
    }
    const [line] = out.lines();
    expect(line?.msg).toBe('call');
    expect((line?.registration as Record<string, unknown>).expiresAt).toBe(1);
    expect((line?.headers as Record<string, unknown>).accept).toBe('json');
    expect((line?.result as Record<string, unknown>).encoded_jit_config).toBe(REDACTED);
  });

  it('scrubs token-looking values from messages, format arguments, errors and stacks', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream });
    log.info(`installation token ${GHS} and pat ${PAT}`);
    log.warn('jwt %s', JWT);
    log.error({ err: new Error(`request failed with ${PAT}`) }, 'boom');
    log.info({ note: `config ${JIT}` }, 'jit');
    log.info({ pem: PEM }, 'key');
    const text = out.text();
    for (const secret of [
      GHS,
      PAT,
      JWT,
      JIT,
      'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun',
    ]) {
      expect(text).not.toContain(secret);
    }
    // Every line is still valid JSON after scrubbing.
    expect(out.lines()).toHaveLength(5);
    expect(text).toContain(REDACTED);
  });

  it('scrubs configured secret values that have no recognizable shape', () => {
    const out = capture();
    const secret = "It's a Secret to Everybody";
    const log = createLogger({ destination: out.stream, knownSecrets: [secret, 'tiny'] });
    log.info({ body: `the secret is "${secret}"` }, `message with ${secret}`);
    log.info('a tiny word stays');
    expect(out.text()).not.toContain(secret);
    expect(out.text()).not.toContain("It\\'s a Secret");
    expect(out.lines()[1]?.msg).toBe('a tiny word stays');
  });

  it('keeps ordinary values: paths, hex digests, ids', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream });
    const path = '/var/lib/runner-fleet/work/linux-small-abc123/_work/some/really/long/path/here';
    const sha = '757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    log.info({ path, sha, runnerId: 42 }, 'ok');
    const [line] = out.lines();
    expect(line).toMatchObject({ path, sha, runnerId: 42 });
  });

  it('child loggers carry scaleSet, runner and jobId', () => {
    const out = capture();
    const log = childLogger(createLogger({ destination: out.stream, level: 'debug' }), {
      scaleSet: 'linux-small',
      runner: 'linux-small-ab12',
      jobId: 7,
    });
    log.debug('created');
    expect(out.lines()[0]).toMatchObject({
      scaleSet: 'linux-small',
      runner: 'linux-small-ab12',
      jobId: 7,
      msg: 'created',
    });
  });

  it('honours the level', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream, level: 'warn' });
    log.info('hidden');
    log.warn('shown');
    expect(out.lines().map((l) => l.msg)).toEqual(['shown']);
  });
});
