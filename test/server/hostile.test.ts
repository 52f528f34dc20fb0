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
import fc from 'fast-check';
import { signWebhookPayload } from '../../src/github/webhooks.js';
import { COUNTED_EVENTS } from '../../src/server/webhook-route.js';
import { rawExchange, startChildServer } from './child.js';
import type { ChildServer } from './child.js';
import { SECRET, signedHeaders, workflowJobPayload } from './helpers.js';

/** Deliveries of the random fuzz at each level (10,000 more at debug level run in fuzz.test.ts). */
const FUZZ_RUNS = 300;

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

/** Signed with the real secret, well framed, hostile in content: each with the status it must get. */
function hostilePayloads(): {
  name: string;
  body: string;
  event?: string;
  delivery?: string;
  status: number;
}[] {
  const job = (labels: string[]) => JSON.stringify(workflowJobPayload({ jobId: 777, labels }));
  const owner = workflowJobPayload({ jobId: 778 });
  (owner.repository as Record<string, unknown>).name = 'r'.repeat(5_000);
  return [
    { name: '100,000 labels', body: job(Array.from({ length: 100_000 }, () => 'x')), status: 422 },
    { name: '101 labels', body: job(Array.from({ length: 101 }, (_, i) => `l${i}`)), status: 422 },
    { name: 'a 900 KB label', body: job(['self-hosted', 'a'.repeat(900_000)]), status: 422 },
    { name: 'a lone surrogate in a label', body: job(['self-hosted', 'linux\ud800']), status: 422 },
    { name: 'a lone low surrogate', body: job(['\udc00']), status: 422 },
    { name: 'a 5,000 character repository name', body: JSON.stringify(owner), status: 422 },
    { name: 'an 8 KB delivery id', body: job(['linux']), delivery: 'd'.repeat(8_000), status: 400 },
    { name: 'a 10,000-deep JSON nesting', body: `${'['.repeat(10_000)}${']'.repeat(10_000)}`, status: 400 },
    {
      name: 'JSON with a __proto__ key',
      body: '{"__proto__":{"polluted":1},"action":"queued"}',
      status: 400,
    },
    { name: 'a 100-label job', body: job(Array.from({ length: 100 }, (_, i) => `l${i}`)), status: 202 },
    { name: 'a 200-character event name', body: '{}', event: 'e'.repeat(200), status: 400 },
  ];
}

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

  it('answers signed but hostile payloads with 400/413/422 and a message, and stays alive', async () => {
    for (const payload of hostilePayloads()) {
      const headers = await signedHeaders(payload.body, payload.event ?? 'workflow_job', payload.delivery);
      const res = await fetch(`${server.url}/webhook`, { method: 'POST', body: payload.body, headers });
      const answer = (await res.json()) as { message?: string };
      expect(res.status, payload.name).toBe(payload.status);
      if (payload.status >= 400) expect(answer.message, payload.name).toMatch(/\w/);
    }
    // 300 distinct signed event names: one `other` series, not 300.
    for (let i = 0; i < 300; i++) {
      const body = '{}';
      const res = await fetch(`${server.url}/webhook`, {
        method: 'POST',
        body,
        headers: await signedHeaders(body, `custom_event_${i}`),
      });
      expect(res.status).toBe(202);
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const events = new Set(
      [...metrics.matchAll(/runner_fleet_webhooks_total\{[^}]*event="([^"]*)"/g)].map((m) => m[1]!),
    );
    for (const event of events) expect([...COUNTED_EVENTS, 'other', 'unverified']).toContain(event);
    expect(events).toContain('other');
    // Strict parsers can read every API answer.
    const jobs = await fetch(`${server.url}/api/v1/jobs`);
    expect(jobs.headers.get('x-content-type-options')).toBe('nosniff');
    expect(jobs.headers.get('cache-control')).toBe('no-store');
    new TextDecoder('utf-8', { fatal: true }).decode(await jobs.arrayBuffer());
    await alive(server);
    await acceptsRealWebhook(server.url);
  }, 120_000);

  it(`answers ${FUZZ_RUNS} random deliveries with the rule's status, never a 5xx`, async () => {
    const samples = fc.sample(fuzzDelivery, { numRuns: FUZZ_RUNS, seed: 4242 + LEVELS.indexOf(level) });
    const statuses: Record<number, number> = {};
    const violations: string[] = [];
    for (const d of samples) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const text = Buffer.from(d.body).toString('utf8');
      if (text === '') continue;
      if (d.signature === 'valid') headers['x-hub-signature-256'] = await signWebhookPayload(SECRET, text);
      if (d.signature === 'wrong') headers['x-hub-signature-256'] = await signWebhookPayload('wrong', text);
      if (d.signature === 'garbage') headers['x-hub-signature-256'] = d.garbage;
      if (d.event !== null) headers['x-github-event'] = d.event;
      if (d.delivery !== null) headers['x-github-delivery'] = d.delivery;
      let status: number;
      try {
        const res = await fetch(`${server.url}/webhook`, { method: 'POST', body: d.body, headers });
        await res.arrayBuffer();
        status = res.status;
      } catch (error) {
        // Header values fetch refuses to send are not deliveries.
        if (error instanceof TypeError && !String(error.cause ?? '').includes('ECONN')) continue;
        throw error;
      }
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status >= 500)
        violations.push(`${status} for ${JSON.stringify({ ...d, body: text.slice(0, 100) })}`);
      if (d.signature === 'none' && status !== 401) violations.push(`${status} without a signature`);
    }
    expect(violations.slice(0, 5)).toEqual([]);
    expect(Object.values(statuses).reduce((a, b) => a + b, 0)).toBeGreaterThan(FUZZ_RUNS * 0.9);
    await alive(server);
    await acceptsRealWebhook(server.url);
  }, 120_000);
});

interface FuzzDelivery {
  body: Uint8Array;
  signature: 'none' | 'garbage' | 'wrong' | 'valid';
  garbage: string;
  event: string | null;
  delivery: string | null;
}

const fuzzLabels = fc.array(fc.string({ maxLength: 40, unit: 'binary' }), { maxLength: 150 });
const fuzzDelivery: fc.Arbitrary<FuzzDelivery> = fc.record({
  body: fc.oneof(
    fc.uint8Array({ maxLength: 4096 }),
    fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v))),
    fc
      .record({ jobId: fc.integer({ min: 1, max: 2 ** 40 }), labels: fuzzLabels })
      .map(({ jobId, labels }) =>
        new TextEncoder().encode(JSON.stringify(workflowJobPayload({ jobId, labels }))),
      ),
  ),
  signature: fc.constantFrom<FuzzDelivery['signature']>('none', 'garbage', 'wrong', 'valid', 'valid'),
  garbage: fc.string({ maxLength: 100 }).map((s) => s.replace(/[^\x20-\x7e]/g, '') || 'x'),
  event: fc.option(fc.oneof(fc.constantFrom('workflow_job', 'ping', 'push'), fc.string({ maxLength: 80 })), {
    nil: null,
  }),
  delivery: fc.option(fc.oneof(fc.uuid(), fc.string({ maxLength: 300 })), { nil: null }),
});
