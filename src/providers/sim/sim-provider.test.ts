/**
 * The sim provider's HTTP edge against a real local server that misbehaves on purpose: error classification,
 * secrets kept out of errors, ownership filtering, watch by polling. The contract suite against the real simulator
 * is in sim-contract.test.ts.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ScaleSetConfig } from '../../core/fleet-config.js';
import type { Instance, InstanceSpec, ProviderContext } from '../provider.js';
import { ProviderError } from '../provider.js';
import type { SimProviderOptions } from './sim-provider.js';
import { SimProvider } from './sim-provider.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

const JIT = Buffer.from(
  JSON.stringify({ '.runner': 'x'.repeat(300), '.credentials': 'y'.repeat(200) }),
).toString('base64');
const spec: InstanceSpec = {
  name: 'linux-small-abc123',
  fleet: 'fleet',
  scaleSet: 'linux-small',
  registration: { mode: 'jit', jitConfig: JIT },
};
const context: ProviderContext = {
  fleet: 'fleet',
  scaleSet: { name: 'linux-small' } as ScaleSetConfig,
  logger: pino({ level: 'silent' }),
};

function simInstance(
  name: string,
  state: Instance['state'],
  tags = { fleet: 'fleet', scaleSet: 'linux-small' },
) {
  return { name, tags, state, createdAt: '2024-05-01T10:00:00.000Z' };
}

describe('sim provider HTTP edge', () => {
  let server: Server;
  let url: string;
  let handler: Handler;
  const requests: { method: string; url: string; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        requests.push({ method: req.method ?? '', url: req.url ?? '', body });
        handler(req, body, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    requests.length = 0;
  });

  const provider = (options: SimProviderOptions = {}) =>
    new SimProvider({ kind: 'sim', url: `${url}/`, bootDelay: 1500 }, context, {
      pollInterval: 0,
      ...options,
    });

  const json = (res: ServerResponse, status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
  };

  async function failure(promise: Promise<unknown>): Promise<ProviderError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }

  it('creates with the name, ownership tags, registration and boot delay, and maps the answer', async () => {
    handler = (_req, body, res) => {
      const sent = JSON.parse(body) as { name: string };
      json(res, 201, { ...simInstance(sent.name, 'pending'), registration: 'never echoed back' });
    };
    const instance = await provider().create(spec, AbortSignal.timeout(5000));
    expect(requests[0]).toMatchObject({ method: 'POST', url: '/_sim/instances' });
    expect(JSON.parse(requests[0]!.body)).toEqual({
      name: spec.name,
      tags: { fleet: 'fleet', scaleSet: 'linux-small' },
      registration: spec.registration,
      bootDelayMs: 1500,
    });
    expect(instance).toEqual({
      name: spec.name,
      fleet: 'fleet',
      scaleSet: 'linux-small',
      state: 'pending',
      createdAt: Date.parse('2024-05-01T10:00:00.000Z'),
    });
  });

  it('treats 200 (already exists) as success, but a name owned by another scale set as a conflict', async () => {
    handler = (_req, _body, res) => json(res, 200, simInstance(spec.name, 'running'));
    expect((await provider().create(spec, AbortSignal.timeout(5000))).state).toBe('running');
    handler = (_req, _body, res) =>
      json(res, 200, simInstance(spec.name, 'running', { fleet: 'fleet', scaleSet: 'gpu' }));
    const error = await failure(provider().create(spec, AbortSignal.timeout(5000)));
    expect(error).toMatchObject({ code: 'name-conflict', retryable: false });
  });

  it('reports a 4xx as fatal, without the secret even when the server echoes the request', async () => {
    handler = (_req, body, res) => json(res, 400, { message: `invalid instance: ${body}` });
    const error = await failure(provider().create(spec, AbortSignal.timeout(5000)));
    expect(error).toMatchObject({ code: 'rejected', retryable: false });
    expect(error.message).toMatch(/^sim provider create linux-small-abc123: HTTP 400: invalid instance: /);
    expect(error.message).not.toContain(JIT);
    expect(error.message).not.toContain(JIT.slice(0, 24));
    expect(JSON.stringify(error) + String(error.cause)).not.toContain(JIT.slice(0, 24));
  });

  it.each([500, 503, 429, 408])('reports HTTP %i as retryable', async (status) => {
    handler = (_req, _body, res) => json(res, status, { message: 'try later' });
    const error = await failure(provider().create(spec, AbortSignal.timeout(5000)));
    expect(error).toMatchObject({ code: 'server-error', retryable: true });
  });

  it('reports a timeout, an abort and an unreachable simulator as retryable', async () => {
    handler = () => undefined; // never answers
    const slow = await failure(
      provider({ requestTimeout: 200 }).list({ fleet: 'fleet' }, AbortSignal.timeout(5000)),
    );
    expect(slow).toMatchObject({ code: 'timeout', retryable: true });

    const controller = new AbortController();
    const pending = provider().delete(spec.name, controller.signal);
    setTimeout(() => controller.abort(), 50);
    expect(await failure(pending)).toMatchObject({ code: 'aborted', retryable: true });

    const closed = new SimProvider({ kind: 'sim', url: 'http://127.0.0.1:1', bootDelay: 0 }, context);
    const refused = await failure(closed.create(spec, AbortSignal.timeout(5000)));
    expect(refused).toMatchObject({ code: 'unreachable', retryable: true });
    expect(refused.message).not.toContain(JIT.slice(0, 24));
  });

  it('deletes by name, and a 404 is success', async () => {
    handler = (req, _body, res) => res.writeHead(req.url?.endsWith('/gone') ? 404 : 204).end();
    await provider().delete('here', AbortSignal.timeout(5000));
    await provider().delete('gone', AbortSignal.timeout(5000));
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'DELETE /_sim/instances/here',
      'DELETE /_sim/instances/gone',
    ]);
    handler = (_req, _body, res) => json(res, 403, { message: 'forbidden' });
    expect(await failure(provider().delete('here', AbortSignal.timeout(5000)))).toMatchObject({
      retryable: false,
    });
  });

  it('lists by ownership tags and drops anything the server returns that is not ours', async () => {
    handler = (_req, _body, res) =>
      json(res, 200, {
        instances: [
          { ...simInstance('a', 'failed'), exitCode: 1 },
          simInstance('b', 'running', { fleet: 'fleet', scaleSet: 'gpu' }),
          simInstance('c', 'running', { fleet: 'other', scaleSet: 'linux-small' }),
        ],
      });
    const listed = await provider().list(
      { fleet: 'fleet', scaleSet: 'linux-small' },
      AbortSignal.timeout(5000),
    );
    expect(requests[0]?.url).toBe('/_sim/instances?tag.fleet=fleet&tag.scaleSet=linux-small');
    expect(listed).toEqual([
      {
        name: 'a',
        fleet: 'fleet',
        scaleSet: 'linux-small',
        state: 'failed',
        createdAt: Date.parse('2024-05-01T10:00:00.000Z'),
        message: 'runner exited with code 1',
      },
    ]);
    const all = await provider().list({ fleet: 'fleet' }, AbortSignal.timeout(5000));
    expect(requests[1]?.url).toBe('/_sim/instances?tag.fleet=fleet');
    expect(all.map((i) => i.name)).toEqual(['a', 'b']);
  });

  it('reports a response of the wrong shape as a fatal bad-response', async () => {
    handler = (_req, _body, res) => json(res, 200, { items: [] });
    expect(await failure(provider().list({ fleet: 'fleet' }, AbortSignal.timeout(5000)))).toMatchObject({
      code: 'bad-response',
      retryable: false,
    });
    handler = (_req, _body, res) => res.writeHead(200).end('<html>');
    expect(await failure(provider().list({ fleet: 'fleet' }, AbortSignal.timeout(5000)))).toMatchObject({
      code: 'bad-response',
    });
  });

  it('refuses a name that is not a plain path segment before any request', async () => {
    const error = await failure(provider().create({ ...spec, name: '../x' }, AbortSignal.timeout(5000)));
    expect(error).toMatchObject({ code: 'invalid-name', retryable: false });
    expect(requests).toEqual([]);
  });

  it('watches by polling on the injected timer, reporting each change once, and stops when unsubscribed', async () => {
    let tick: (() => void) | undefined;
    let cleared = 0;
    const watched = provider({
      pollInterval: 500,
      setInterval: (fn) => ((tick = fn), 'handle'),
      clearInterval: (handle) => void (handle === 'handle' && (cleared += 1)),
    });
    let state: Instance['state'] = 'pending';
    handler = (_req, _body, res) => json(res, 200, { instances: [simInstance('w', state)] });
    const seen: string[] = [];
    const stop = watched.watch!((i) => seen.push(`${i.name}:${i.state}`));
    const poll = async () => {
      const before = requests.length;
      tick!();
      await expect.poll(() => requests.length).toBe(before + 1);
      await new Promise((r) => setTimeout(r, 20));
    };
    await poll();
    await poll();
    state = 'running';
    await poll();
    state = 'succeeded';
    await poll();
    expect(seen).toEqual(['w:pending', 'w:running', 'w:succeeded']);
    expect(requests.at(-1)?.url).toBe('/_sim/instances?tag.fleet=fleet&tag.scaleSet=linux-small');
    stop();
    expect(cleared).toBe(1);
    expect(provider({ pollInterval: 0 }).watch).toBeUndefined();
  });
});
