/**
 * 10,000 random deliveries over real HTTP: random bytes, random JSON, mutated workflow_job payloads, random,
 * missing and valid signatures, random headers. Hostile framing, slow clients and signed-but-hostile payloads are
 * in hostile.test.ts. The server must answer each with the status the rules give (never
 * a 5xx), store only well-formed events, and still answer /healthz afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { signWebhookPayload } from '../../src/github/webhooks.js';
import { SECRET, startTestServer, workflowJobPayload } from './helpers.js';
import type { TestServer } from './helpers.js';

const RUNS = 10_000;
const CONCURRENCY = 16;

type SignatureKind = 'none' | 'garbage' | 'random-hex' | 'wrong-secret' | 'valid';

interface Delivery {
  body: Uint8Array;
  signature: SignatureKind;
  garbage: string;
  event: string | null;
  delivery: string | null;
  contentType: string | null;
}

const jsonText = fc.oneof(
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.constant(JSON.stringify(workflowJobPayload())),
);

/** A valid payload with one field removed or replaced by a random JSON value. */
const mutatedJob = fc
  .record({
    path: fc.constantFrom(
      ['action'],
      ['workflow_job'],
      ['workflow_job', 'id'],
      ['workflow_job', 'run_id'],
      ['workflow_job', 'labels'],
      ['workflow_job', 'status'],
      ['workflow_job', 'runner_id'],
      ['workflow_job', 'created_at'],
      ['repository'],
      ['repository', 'owner'],
      ['repository', 'name'],
      ['installation'],
    ),
    value: fc.option(fc.jsonValue(), { nil: undefined }),
    jobId: fc.integer({ min: 1, max: 2 ** 40 }),
    action: fc.constantFrom('queued', 'in_progress', 'completed', 'waiting'),
  })
  .map(({ path, value, jobId, action }) => {
    const payload = workflowJobPayload({ jobId, action });
    let node = payload;
    for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
    if (value === undefined) delete node[path.at(-1)!];
    else node[path.at(-1)!] = value;
    return JSON.stringify(payload);
  });

const body = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }),
  fc.string({ maxLength: 512, unit: 'grapheme' }).map((s) => new TextEncoder().encode(s)),
  jsonText.map((s) => new TextEncoder().encode(s)),
  mutatedJob.map((s) => new TextEncoder().encode(s)),
);

const delivery: fc.Arbitrary<Delivery> = fc.record({
  body,
  signature: fc.constantFrom<SignatureKind>(
    'none',
    'garbage',
    'random-hex',
    'wrong-secret',
    'valid',
    'valid',
    'valid',
  ),
  garbage: fc.string({ maxLength: 80 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
  event: fc.oneof(
    fc.constant(null),
    fc.constantFrom('workflow_job', 'workflow_job', 'ping', 'push'),
    fc.stringMatching(/^[a-z_]{1,20}$/),
  ),
  delivery: fc.option(fc.uuid(), { nil: null }),
  contentType: fc.constantFrom(
    null,
    'application/json',
    'application/x-www-form-urlencoded',
    'text/plain',
    'application/octet-stream',
  ),
});

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * The statuses the rules allow for one delivery, in the server's order: the headers first (before the body is
 * read), then the body. A random workflow_job may be valid, or not.
 */
function allowed(d: Delivery, headers: Record<string, string>): number[] {
  const signature = headers['x-hub-signature-256'];
  if (signature === undefined || !/^sha256=[0-9a-f]{64}$/i.test(signature)) return [401];
  if (d.event === null || !/^[a-z][a-z0-9_]*$/.test(d.event)) return [400];
  if (!isUtf8(d.body)) return [400];
  if (d.signature !== 'valid') return [401];
  if (d.event === 'ping') return [200];
  if (d.event !== 'workflow_job') return [202];
  if (d.delivery === null) return [400];
  return [202, 400, 422];
}

let t: TestServer;
let url: string;
beforeAll(async () => {
  t = await startTestServer();
  url = await t.server.listen();
});
afterAll(async () => {
  await t.server.close();
});

describe('POST /webhook under random input', () => {
  it(`answers ${RUNS.toLocaleString('en')} random deliveries with 4xx or the rule's status, never 5xx`, async () => {
    const samples = fc.sample(delivery, { numRuns: RUNS, seed: 20240501 });
    const statuses = new Map<number, number>();
    const violations: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < samples.length) {
        const d = samples[next++]!;
        const text = new TextDecoder().decode(d.body);
        const headers: Record<string, string> = {};
        if (d.signature === 'garbage') headers['x-hub-signature-256'] = d.garbage || 'x';
        if (d.signature === 'random-hex') headers['x-hub-signature-256'] = `sha256=${'0'.repeat(63)}1`;
        if (d.signature === 'wrong-secret' && d.body.length > 0)
          headers['x-hub-signature-256'] = await signWebhookPayload('not-the-secret', text);
        if (d.signature === 'valid' && d.body.length > 0)
          headers['x-hub-signature-256'] = await signWebhookPayload(SECRET, text);
        if (d.event !== null) headers['x-github-event'] = d.event;
        if (d.delivery !== null) headers['x-github-delivery'] = d.delivery;
        if (d.contentType !== null) headers['content-type'] = d.contentType;
        const res = await fetch(`${url}/webhook`, { method: 'POST', body: d.body, headers });
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const expected = allowed(d, headers);
        if (res.status >= 500 || !expected.includes(res.status)) {
          violations.push(`${res.status} for ${JSON.stringify({ ...d, body: text.slice(0, 200) })}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(violations.slice(0, 5)).toEqual([]);
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(RUNS);
    // The sample exercises every path, not only the signature check.
    for (const status of [200, 202, 400, 401])
      expect(statuses.get(status) ?? 0, `status ${status}`).toBeGreaterThan(50);
    // Every stored event is well formed.
    for (const e of t.sink.events) {
      expect(Number.isSafeInteger(e.job.id) && e.job.id > 0).toBe(true);
      expect(e.job.labels.every((l) => typeof l === 'string')).toBe(true);
      expect(['queued', 'in_progress', 'completed', 'waiting']).toContain(e.action);
    }
    expect(t.sink.events.length).toBeGreaterThan(0);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(t.logs.text()).not.toContain(SECRET);
  }, 120_000);
});
