/**
 * Hostile input against the controller's HTTP server running in a process of its own (test/server/child-server.ts),
 * over real sockets, at every log level: malformed HTTP framing, hostile headers, hostile bodies, signed but
 * hostile payloads. After each batch the process must still be alive, /healthz must answer, and a real signed
 * workflow_job must still be accepted. The slow-client storm with its memory figures is in slow-clients.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, startChildServer } from './child.js';
import type { ChildServer } from './child.js';
import { SECRET, signedHeaders, workflowJobPayload } from './helpers.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;

/** Malformed HTTP: each must be answered with a 4xx (or the connection closed), never crash the process. */
export const MALFORMED_FRAMING: readonly { readonly name: string; readonly bytes: string | Buffer }[] = [
  {
    name: 'a 20 KB header',
    bytes: `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
  },
  { name: 'a header line without a colon', bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n' },
  { name: 'a bad method', bytes: 'FOO\x01 /webhook HTTP/1.1\r\nHost: x\r\n\r\n' },
  { name: 'a bad HTTP version', bytes: 'GET / HTTP/9.9\r\nHost: x\r\n\r\n' },
  {
    name: 'binary garbage',
    bytes: Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]),
  },
  { name: 'a NUL in a header value', bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n' },
  {
    name: 'two Content-Length headers',
    bytes: 'POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
  },
  {
    name: 'Content-Length and chunked together',
    bytes:
      'POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  },
  {
    name: 'a bad chunk size',
    bytes: 'POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  },
  {
    name: 'a negative Content-Length',
    bytes: 'POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
  },
  { name: 'a request line of 70 KB', bytes: `GET /${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n` },
  { name: 'a lone LF request', bytes: 'GET / HTTP/1.1\nHost: x\n\n' },
];

async function acceptsRealWebhook(url: string): Promise<void> {
  const body = JSON.stringify(workflowJobPayload({ jobId: Math.floor(Math.random() * 1e9) + 1 }));
  const res = await fetch(`${url}/webhook`, { method: 'POST', body, headers: await signedHeaders(body) });
  expect(res.status, await res.text()).toBe(202);
}

async function alive(server: ChildServer): Promise<void> {
  expect(server.exitCode(), server.stderr()).toBeNull();
  const health = await fetch(`${server.url}/healthz`);
  expect(health.status).toBe(200);
}

describe.each(LEVELS)('hostile HTTP at log level %s', (level) => {
  let dir: string;
  let server: ChildServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rf-hostile-'));
    server = await startChildServer(level, join(dir, 'server.log'));
  }, 90_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers malformed framing with a 4xx or a close, and stays alive', async () => {
    const statuses: Record<string, number | null> = {};
    for (const { name, bytes } of MALFORMED_FRAMING) {
      const result = await rawExchange(server.port, bytes, 15_000);
      statuses[name] = result.status;
      expect(result.closedByServer, `${name}: the server closes the connection`).toBe(true);
      if (result.status !== null) {
        expect(result.status, name).toBeGreaterThanOrEqual(400);
        expect(result.status, name).toBeLessThan(500);
      }
    }
    expect(statuses['a 20 KB header']).toBe(431);
    expect(statuses['a header line without a colon']).toBe(400);
    await alive(server);
    await acceptsRealWebhook(server.url);
    expect(readFileSync(join(dir, 'server.log'), 'utf8')).not.toContain(SECRET);
  }, 120_000);
});
