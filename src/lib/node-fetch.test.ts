import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { callSignal } from './async.js';
import { bodyInMemory, createNodeFetch, releaseAnswered } from './node-fetch.js';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly socket: Socket;
}

/** A node:http server on 127.0.0.1 that records what it is sent and answers with `handler`. */
async function serve(
  handler: (seen: Seen, res: http.ServerResponse) => void,
  options: http.ServerOptions = {},
): Promise<{ url: string; seen: Seen[]; connections: () => number; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = http.createServer(options, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        socket: req.socket,
      };
      seen.push(s);
      handler(s, res);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('createNodeFetch without a proxy', () => {
  it('sends every request of a series on one kept-alive connection', async () => {
    const server = await serve((_s, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true }));
    });
    cleanups.push(server.close);
    const fetch = createNodeFetch();
    cleanups.push(() => fetch.close());
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${server.url}/item/${i}`);
      expect(await res.json()).toEqual({ ok: true });
    }
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${server.url}/post`, { method: 'POST', body: '{"n":1}' });
      await res.text();
    }
    expect(server.seen).toHaveLength(25);
    expect(server.connections()).toBe(1);
  });

  it('sends a string body with its length and content type, and answers status, headers, url and body', async () => {
    const server = await serve((s, res) => {
      res.statusCode = 201;
      res.setHeader('x-echo-type', String(s.headers['content-type']));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ got: s.body, method: s.method, length: s.headers['content-length'] }));
    });
    cleanups.push(server.close);
    const fetch = createNodeFetch();
    cleanups.push(() => fetch.close());
    const res = await fetch(new URL(`${server.url}/things?a=1`), {
      method: 'post',
      headers: { 'content-type': 'application/json', 'x-one': 'yes' },
      body: '{"name":"é"}',
    });
    expect(res.status).toBe(201);
    expect(res.ok).toBe(true);
    expect(res.url).toBe(`${server.url}/things?a=1`);
    expect(res.headers.get('x-echo-type')).toBe('application/json');
    expect(await res.json()).toEqual({ got: '{"name":"é"}', method: 'POST', length: '13' });
    expect(server.seen[0]!.url).toBe('/things?a=1');
    expect(server.seen[0]!.headers['x-one']).toBe('yes');
    // A string body without a type gets fetch's default.
    await (await fetch(server.url, { method: 'PUT', body: 'plain' })).text();
    expect(server.seen[1]!.headers['content-type']).toBe('text/plain;charset=UTF-8');
    // A Request object goes the general way and arrives the same.
    await (await fetch(new Request(`${server.url}/r`, { method: 'POST', body: 'x' }))).text();
    expect(server.seen[2]!).toMatchObject({ method: 'POST', url: '/r', body: 'x' });
  });

  it('streams a response without a length (chunked) and answers 204 with no body', async () => {
    const big = 'x'.repeat(3 * 1024 * 1024);
    const server = await serve((s, res) => {
      if (s.url === '/empty') {
        res.statusCode = 204;
        res.end();
        return;
      }
      res.write(big.slice(0, 1000));
      setTimeout(() => res.end(big.slice(1000)), 20);
    });
    cleanups.push(server.close);
    const fetch = createNodeFetch();
    cleanups.push(() => fetch.close());
    const res = await fetch(`${server.url}/big`);
    expect(res.status).toBe(200);
    expect((await res.text()).length).toBe(big.length);
    const empty = await fetch(`${server.url}/empty`);
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
  });

  it('rejects with the abort reason when aborted while the body is on its way', async () => {
    const server = await serve((_s, res) => {
      res.setHeader('content-length', '100');
      res.write('partial');
    });
    cleanups.push(server.close);
    const fetch = createNodeFetch();
    cleanups.push(() => fetch.close());
    const abort = new AbortController();
    const pending = fetch(`${server.url}/slow`, { signal: abort.signal });
    setTimeout(() => abort.abort(new Error('gave up waiting')), 50);
    await expect(pending).rejects.toThrow(/gave up waiting|aborted/);
  });

  it('says which answers are in memory; a call ended on a streamed one is still bounded by its timeout', async () => {
    const server = await serve((s, res) => {
      if (s.url === '/small') {
        res.setHeader('content-length', '2');
        res.end('ok');
        return;
      }
      res.write('the first part, then nothing'); // chunked, and stalled
    });
    cleanups.push(server.close);
    const fetch = createNodeFetch();
    cleanups.push(() => fetch.close());
    const source = new AbortController();

    const small = callSignal([source.signal], 60_000);
    const answered = await fetch(`${server.url}/small`, { signal: small.signal });
    expect(bodyInMemory(answered)).toBe(true);
    releaseAnswered(small, answered);
    expect(await answered.text()).toBe('ok');

    // A failed call (no response) is ended whole: its timer no longer fires.
    const failed = callSignal([source.signal], 20);
    releaseAnswered(failed, undefined);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(failed.timedOut).toBe(false);

    const stalled = callSignal([source.signal], 200);
    const streamed = await fetch(`${server.url}/stalled`, { signal: stalled.signal });
    expect(bodyInMemory(streamed)).toBe(false);
    expect(bodyInMemory(new Response('elsewhere'))).toBe(false);
    releaseAnswered(stalled, streamed);
    // Off the long-lived source, yet the rest of the body is still read under the call's timeout.
    source.abort(new Error('not this one'));
    await expect(streamed.text()).rejects.toThrow();
    expect(stalled.timedOut).toBe(true);
  });

  it('sends a GET once more on a new connection when the kept-alive one fails before any answer', async () => {
    // The server answers one request per connection and drops the connection when a second one arrives on it,
    // as a server that closed an idle connection at the moment the client reused it.
    const answered = new WeakSet<Socket>();
    const server = await serve((s, res) => {
      if (answered.has(s.socket)) {
        s.socket.destroy();
        return;
      }
      answered.add(s.socket);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ n: server.seen.length }));
    });
    cleanups.push(server.close);
    const fetch = createNodeFetch();
    cleanups.push(() => fetch.close());
    expect(await (await fetch(`${server.url}/a`)).json()).toEqual({ n: 1 });
    expect(await (await fetch(`${server.url}/b`)).json()).toEqual({ n: 3 });
    expect(server.connections()).toBe(2);
    // A POST is not sent twice: the server may have acted on it.
    await expect(fetch(`${server.url}/c`, { method: 'POST', body: '{}' })).rejects.toThrow(/socket hang up/);
    expect(server.seen.filter((x) => x.url === '/c')).toHaveLength(1);
  });
});
