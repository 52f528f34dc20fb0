/**
 * The hostile inputs of test/server/hostile.test.ts, shared with `npm run reliability` (scripts/reliability.ts):
 * malformed HTTP framing, signed but hostile workflow_job payloads, and a random delivery generator.
 */
import fc from 'fast-check';
import { signWebhookPayload } from '../../src/github/webhooks.js';
import { SECRET, signedHeaders, workflowJobPayload } from './helpers.js';

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
export function hostilePayloads(): {
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

export interface HostileResult {
  readonly name: string;
  readonly expected: number;
  readonly status: number;
  readonly message: string | undefined;
}

/** Sends every hostile payload, signed with the real secret; the caller checks status against expected. */
export async function sendHostilePayloads(url: string): Promise<HostileResult[]> {
  const results: HostileResult[] = [];
  for (const payload of hostilePayloads()) {
    const headers = await signedHeaders(payload.body, payload.event ?? 'workflow_job', payload.delivery);
    const res = await fetch(`${url}/webhook`, { method: 'POST', body: payload.body, headers });
    const answer = (await res.json()) as { message?: string };
    results.push({
      name: payload.name,
      expected: payload.status,
      status: res.status,
      message: answer.message,
    });
  }
  return results;
}

export interface FuzzDelivery {
  body: Uint8Array;
  signature: 'none' | 'garbage' | 'wrong' | 'valid';
  garbage: string;
  event: string | null;
  delivery: string | null;
}

const fuzzLabels = fc.array(fc.string({ maxLength: 40, unit: 'binary' }), { maxLength: 150 });
export const fuzzDelivery: fc.Arbitrary<FuzzDelivery> = fc.record({
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

export interface FuzzResult {
  readonly sent: number;
  readonly statuses: Record<number, number>;
  readonly violations: string[];
}

/** Sends each delivery; a 5xx, or anything but 401 without a signature, is a violation. */
export async function runFuzz(url: string, samples: readonly FuzzDelivery[]): Promise<FuzzResult> {
  const statuses: Record<number, number> = {};
  const violations: string[] = [];
  let sent = 0;
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
      const res = await fetch(`${url}/webhook`, { method: 'POST', body: d.body, headers });
      await res.arrayBuffer();
      status = res.status;
    } catch (error) {
      // Header values fetch refuses to send are not deliveries.
      if (error instanceof TypeError && !String(error.cause ?? '').includes('ECONN')) continue;
      throw error;
    }
    sent += 1;
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status >= 500) violations.push(`${status} for ${JSON.stringify({ ...d, body: text.slice(0, 100) })}`);
    if (d.signature === 'none' && status !== 401) violations.push(`${status} without a signature`);
  }
  return { sent, statuses, violations };
}
