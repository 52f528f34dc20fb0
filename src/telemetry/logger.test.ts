import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
    const log = createLogger({ destination: out.stream, knownSecrets: [secret] });
    log.info({ body: `the secret is "${secret}"` }, `message with ${secret}`);
    expect(out.text()).not.toContain(secret);
    expect(out.text()).not.toContain("It\\'s a Secret");
  });

  it('scrubs secrets shorter than 8 characters: whole words from 3 characters, whole values below', () => {
    const out = capture();
    // Secrets that the old rule (8 characters or more) let through.
    const log = createLogger({ destination: out.stream, knownSecrets: ['hook1', 'pw!', 'q7', '4711'] });
    log.info(
      { header: 'secret=hook1;', quoted: '"pw!"', exact: 'q7', port: 4711 },
      'signed with hook1\nand pw!',
    );
    log.info(
      { word: 'hook12345 webhook1x', note: 'q7 appears inside a sentence: q7q7', n: 47110 },
      'ordinary',
    );
    const [first, second] = out.lines();
    expect(first).toMatchObject({
      header: `secret=${REDACTED};`,
      quoted: `"${REDACTED}"`,
      exact: REDACTED,
      port: REDACTED,
      msg: `signed with ${REDACTED}\nand ${REDACTED}`,
    });
    // Not whole words, or (for 1-2 characters) not whole values: left readable.
    expect(second).toMatchObject({
      word: 'hook12345 webhook1x',
      note: 'q7 appears inside a sentence: q7q7',
      n: 47110,
      msg: 'ordinary',
    });
  });

  it('never throws on hostile values: Buffers, typed arrays, cycles, throwing getters, Proxies, Maps', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream, level: 'trace' });
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = cycle;
    const getter = Object.defineProperty({}, 'boom', {
      enumerable: true,
      get() {
        throw new Error('getter exploded');
      },
    });
    const proxy = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('no keys');
        },
      },
    );
    // The shape that crashed the server: an error carrying the raw packet, as Node's HTTP parser makes it.
    const clientError = Object.assign(new Error('Parse Error: Header overflow'), {
      code: 'HPE_HEADER_OVERFLOW',
      rawPacket: Buffer.alloc(20_000, 0x61),
      token: 'not-logged',
    });
    const fakeBuffer = Object.create(Buffer.prototype) as Buffer;
    const hostile = {
      err: clientError,
      buf: Buffer.from('raw bytes'),
      fakeBuffer,
      u16: new Uint16Array(4),
      ab: new ArrayBuffer(8),
      view: new DataView(new ArrayBuffer(2)),
      cycle,
      getter,
      proxy,
      map: new Map<unknown, unknown>([
        ['a', 1],
        [{ k: 1 }, new Set([1, 2])],
        ['password', 'hunter2-long-enough'],
      ]),
      nested: { a: { b: { c: { d: { e: { f: { g: { h: { i: 'deep' } } } } } } } } },
      big: 10n ** 30n,
      date: new Date(Number.NaN),
      fn: () => 1,
      sym: Symbol('s'),
      nan: Number.NaN,
      many: Array.from({ length: 5000 }, (_, i) => i),
      long: 'x'.repeat(100_000),
      caused: new Error('outer', { cause: new AggregateError([new Error('inner')], 'agg') }),
    };
    for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const) {
      expect(() => log[level](hostile, 'hostile')).not.toThrow();
      expect(() => log[level](clientError)).not.toThrow();
      expect(() => log[level](getter)).not.toThrow();
      expect(() => log.child({ buf: Buffer.from('x'), cycle })[level]('child')).not.toThrow();
    }
    const lines = out.lines();
    expect(lines.length).toBeGreaterThanOrEqual(24);
    const first = lines[0]!;
    expect(first.err).toMatchObject({
      type: 'Error',
      code: 'HPE_HEADER_OVERFLOW',
      rawPacket: '[Buffer 20000 bytes]',
    });
    expect((first.err as Record<string, unknown>).token).toBe(REDACTED);
    expect(first.buf).toBe('[Buffer 9 bytes]');
    expect(first.u16).toBe('[Uint16Array 8 bytes]');
    expect(first.cycle).toEqual({ name: 'loop', self: '[Circular]' });
    expect(first.getter).toEqual({ boom: '[unreadable: Error]' });
    expect(first.map).toMatchObject({ a: 1, password: REDACTED });
    expect(first.big).toBe('1000000000000000000000000000000');
    expect((first.many as unknown[]).length).toBe(101);
    expect((first.long as string).length).toBeLessThan(20_000);
    expect(first.caused).toMatchObject({
      message: 'outer',
      cause: { message: 'agg', errors: [{ message: 'inner' }] },
    });
    expect(lines[1]).toMatchObject({
      msg: 'Parse Error: Header overflow',
      err: { code: 'HPE_HEADER_OVERFLOW' },
    });
    expect(out.text()).not.toContain('aaaaaaaa');
    expect(out.text()).not.toContain('not-logged');
  });

  it('writes one msg key per line: a msg field next to a message becomes reason', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream });
    log.warn({ msg: 'the cause' }, 'the message');
    log.warn({ msg: 'the cause', reason: 'kept' }, 'the message');
    log.info({ msg: 'alone' });
    const raw = out.text().split('\n').filter(Boolean);
    for (const line of raw) expect(line.match(/"msg":/g)).toHaveLength(1);
    expect(out.lines()).toMatchObject([
      { msg: 'the message', reason: 'the cause' },
      { msg: 'the message', reason: 'kept', detail: 'the cause' },
      { msg: 'alone' },
    ]);
  });

  it('writes one msg key per line when a child logger is bound to a msg: the bound one becomes reason', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream });
    log
      .child({ scaleSet: 'small', msg: 'runner command not found' })
      .warn({ code: 'not_found' }, 'create failed');
    log.child({ msg: 'bound', reason: 'kept' }).child({ runner: 'r-1' }).info('started');
    const raw = out.text().split('\n').filter(Boolean);
    expect(raw).toHaveLength(2);
    for (const line of raw) expect(line.match(/"msg":/g)).toHaveLength(1);
    expect(out.lines()).toMatchObject([
      { msg: 'create failed', scaleSet: 'small', reason: 'runner command not found', code: 'not_found' },
      { msg: 'started', reason: 'kept', detail: 'bound', runner: 'r-1' },
    ]);
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

describe('log call sites', () => {
  it('never pass a msg field next to a message (it would be a second msg key)', () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const offenders: string[] = [];
    const call = /\.(?:trace|debug|info|warn|error|fatal)\(\s*\{[^{}]*?\bmsg\s*:/g;
    for (const file of readdirSync(root, { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
      const text = readFileSync(join(root, file), 'utf8');
      for (const match of text.matchAll(call)) {
        offenders.push(`src/${file}:${text.slice(0, match.index).split('\n').length}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
