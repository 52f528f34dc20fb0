import { afterEach, describe, expect, it } from 'vitest';
import examples from '@octokit/webhooks-examples';
import { verifyWebhookSignature } from '../../src/github/webhooks.js';
import type { WorkflowJobEvent } from '../../src/core/ports.js';
import {
  MemorySink,
  SECRET,
  metricValue,
  signedHeaders,
  startTestServer,
  workflowJobPayload,
} from './helpers.js';
import type { TestServer } from './helpers.js';

// GitHub's published test vector for X-Hub-Signature-256.
const VECTOR = {
  secret: "It's a Secret to Everybody",
  body: 'Hello, World!',
  signature: 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
};

let t: TestServer | null = null;

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  if (value === undefined) delete node[path.at(-1)!];
  else node[path.at(-1)!] = value;
}
afterEach(async () => {
  await t?.server.close();
  t = null;
});

async function start(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  t = await startTestServer(options);
  return t;
}

async function post(body: string | Buffer, headers: Record<string, string>) {
  return t!.server.app.inject({ method: 'POST', url: '/webhook', payload: body, headers });
}

describe('webhook signature', () => {
  it("verifies GitHub's HMAC test vector and rejects any change", async () => {
    expect(await verifyWebhookSignature(VECTOR.secret, VECTOR.body, VECTOR.signature)).toBe(true);
    expect(await verifyWebhookSignature(VECTOR.secret, Buffer.from(VECTOR.body), VECTOR.signature)).toBe(
      true,
    );
    expect(await verifyWebhookSignature(VECTOR.secret, 'Hello, World?', VECTOR.signature)).toBe(false);
    expect(await verifyWebhookSignature('wrong', VECTOR.body, VECTOR.signature)).toBe(false);
    expect(
      await verifyWebhookSignature(VECTOR.secret, VECTOR.body, VECTOR.signature.replace('757', '758')),
    ).toBe(false);
    expect(await verifyWebhookSignature(VECTOR.secret, VECTOR.body, VECTOR.signature.slice(0, -1))).toBe(
      false,
    );
    expect(await verifyWebhookSignature(VECTOR.secret, VECTOR.body, undefined)).toBe(false);
    expect(await verifyWebhookSignature(VECTOR.secret, '', VECTOR.signature)).toBe(false);
    expect(await verifyWebhookSignature(VECTOR.secret, Buffer.from([0xff, 0xfe]), VECTOR.signature)).toBe(
      false,
    );
  });

  it('accepts the test vector end to end (ping 200) and rejects it as a workflow_job that is not JSON (400)', async () => {
    const { server, sink } = await start({
      config: { server: { host: '127.0.0.1', port: 0 }, webhook: { secret: VECTOR.secret } },
    });
    const headers = {
      'x-hub-signature-256': VECTOR.signature,
      'x-github-delivery': 'd-1',
      'content-type': 'application/json',
    };
    const ping = await server.app.inject({
      method: 'POST',
      url: '/webhook',
      payload: VECTOR.body,
      headers: { ...headers, 'x-github-event': 'ping' },
    });
    expect(ping.statusCode).toBe(200);
    const job = await server.app.inject({
      method: 'POST',
      url: '/webhook',
      payload: VECTOR.body,
      headers: { ...headers, 'x-github-event': 'workflow_job' },
    });
    expect(job.statusCode).toBe(400);
    expect(job.json()).toMatchObject({ error: 'invalid_json' });
    expect(sink.events).toHaveLength(0);
  });

  it('rejects a tampered body, a missing header, a wrong secret and a non-sha256 signature with 401', async () => {
    const { sink, metrics } = await start();
    const body = JSON.stringify(workflowJobPayload());
    const headers = await signedHeaders(body);
    const tampered = body.replace('"linux"', '"linux2"');
    expect((await post(tampered, headers)).statusCode).toBe(401);
    const { ['x-hub-signature-256']: _dropped, ...unsigned } = headers;
    const missing = await post(body, unsigned);
    expect(missing.statusCode).toBe(401);
    expect(missing.json().message).toMatch(/missing X-Hub-Signature-256/);
    expect(
      (await post(body, await signedHeaders(body, 'workflow_job', 'd-2', 'another-secret'))).statusCode,
    ).toBe(401);
    expect((await post(body, { ...headers, 'x-hub-signature-256': 'sha1=abc' })).statusCode).toBe(401);
    expect(sink.events).toHaveLength(0);
    expect(
      await metricValue(metrics, 'runner_fleet_webhooks_total', {
        event: 'unverified',
        result: 'unauthorized',
      }),
    ).toBe(4);
    // The same body, correctly signed, is accepted: the rejections above were about the signature only.
    expect((await post(body, headers)).statusCode).toBe(202);
  });

  it('answers 413 to a body over 1 MiB and accepts one just under it', async () => {
    const { sink, metrics } = await start();
    const big = 'x'.repeat(1024 * 1024 + 1);
    const res = await post(big, await signedHeaders(big));
    expect(res.statusCode).toBe(413);
    expect(await metricValue(metrics, 'runner_fleet_webhooks_total', { result: 'too_large' })).toBe(1);
    const payload = workflowJobPayload();
    const base = JSON.stringify({ ...payload, padding: '' });
    const padded = JSON.stringify({ ...payload, padding: 'p'.repeat(1024 * 1024 - base.length) });
    expect(Buffer.byteLength(padded)).toBe(1024 * 1024);
    expect((await post(padded, await signedHeaders(padded))).statusCode).toBe(202);
    expect(sink.events).toHaveLength(1);
  });
});

describe('webhook parsing', () => {
  const jobExamples = (examples as unknown as { name: string; examples: Record<string, unknown>[] }[]).find(
    (e) => e.name === 'workflow_job',
  )!.examples;

  it("accepts every workflow_job example from GitHub's webhook schema", async () => {
    const { sink } = await start();
    for (const [i, example] of jobExamples.entries()) {
      const body = JSON.stringify(example);
      const res = await post(body, await signedHeaders(body, 'workflow_job', `example-${i}`));
      expect(res.statusCode, JSON.stringify(res.json())).toBe(202);
    }
    // Two examples repeat the same (job id, action): they are duplicates of an earlier one.
    expect(sink.events.length + sink.duplicates).toBe(jobExamples.length);
    const queued = sink.events.find((e) => e.action === 'queued' && e.job.labels.includes('k8s'));
    expect(queued).toMatchObject({
      installationId: 23154469,
      job: {
        id: 12877621891,
        runId: 4747967848,
        owner: 'lineville',
        repo: 'elastic-machines-testing',
        runnerId: null,
        runnerName: null,
      },
    });
  });

  it('maps a payload to the event the store persists', async () => {
    const { sink } = await start();
    const body = JSON.stringify(workflowJobPayload({ action: 'completed', jobId: 5 }));
    await post(body, await signedHeaders(body, 'workflow_job', 'delivery-5'));
    expect(sink.events[0]).toEqual<WorkflowJobEvent>({
      deliveryId: 'delivery-5',
      action: 'completed',
      installationId: 31,
      job: {
        id: 5,
        runId: 77,
        owner: 'octo-org',
        repo: 'app',
        labels: ['self-hosted', 'linux'],
        status: 'completed',
        conclusion: 'success',
        runnerId: 9,
        runnerName: 'linux-small-ab12',
        createdAt: Date.parse('2024-05-01T10:00:00Z'),
        startedAt: Date.parse('2024-05-01T10:00:05Z'),
        completedAt: Date.parse('2024-05-01T10:01:05Z'),
      },
    });
  });

  // [field named in the error, path to change, new value (undefined: delete)]
  it.each<[string, string[], unknown]>([
    ['workflow_job.id', ['workflow_job', 'id'], undefined],
    ['workflow_job.labels', ['workflow_job', 'labels'], 'linux'],
    ['workflow_job.labels[1]', ['workflow_job', 'labels'], ['a', 3]],
    ['action', ['action'], 'exploded'],
    ['repository.owner.login', ['repository', 'owner', 'login'], undefined],
    ['workflow_job.created_at', ['workflow_job', 'created_at'], 'yesterday'],
    ['workflow_job', ['workflow_job'], []],
  ])('rejects an unknown shape with 400 naming %s', async (field, path, value) => {
    const { sink } = await start();
    const payload = workflowJobPayload();
    setPath(payload, path, value);
    const body = JSON.stringify(payload);
    const res = await post(body, await signedHeaders(body));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'invalid_payload', field });
    expect(res.json().message).toContain(field);
    expect(sink.events).toHaveLength(0);
  });

  it('rejects malformed JSON, a JSON array, and missing event or delivery headers with 400', async () => {
    await start();
    for (const body of ['{"action":', '[]', 'null', '"text"']) {
      expect((await post(body, await signedHeaders(body))).statusCode, body).toBe(400);
    }
    const body = JSON.stringify(workflowJobPayload());
    const headers = await signedHeaders(body);
    const { ['x-github-event']: _e, ...noEvent } = headers;
    expect((await post(body, noEvent)).statusCode).toBe(400);
    const { ['x-github-delivery']: _d, ...noDelivery } = headers;
    expect((await post(body, noDelivery)).statusCode).toBe(400);
  });

  it('accepts the form-encoded delivery format', async () => {
    const { sink } = await start();
    const body = new URLSearchParams({
      payload: JSON.stringify(workflowJobPayload({ jobId: 8 })),
    }).toString();
    const headers = { ...(await signedHeaders(body)), 'content-type': 'application/x-www-form-urlencoded' };
    expect((await post(body, headers)).statusCode).toBe(202);
    expect(sink.events[0]?.job.id).toBe(8);
  });
});

describe('webhook delivery semantics', () => {
  it('answers ping 200 and other events 202, counting them, without touching the sink', async () => {
    const { sink, metrics } = await start();
    const ping = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
    expect((await post(ping, await signedHeaders(ping, 'ping'))).statusCode).toBe(200);
    const push = JSON.stringify({ ref: 'refs/heads/main' });
    const res = await post(push, await signedHeaders(push, 'push'));
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: false, ignored: 'push' });
    expect(sink.events).toHaveLength(0);
    expect(
      await metricValue(metrics, 'runner_fleet_webhooks_total', { event: 'push', result: 'ignored' }),
    ).toBe(1);
    expect(await metricValue(metrics, 'runner_fleet_webhooks_total', { event: 'ping', result: 'ping' })).toBe(
      1,
    );
  });

  it('answers duplicates 202, counts them, and wakes the reconciler once', async () => {
    const { sink, metrics, woken } = await start();
    const body = JSON.stringify(workflowJobPayload({ jobId: 11 }));
    const headers = await signedHeaders(body, 'workflow_job', 'same-delivery');
    const first = await post(body, headers);
    const again = await post(body, headers);
    // A redelivery under a new id of the same (job, action) is a duplicate too.
    const redelivered = await post(body, await signedHeaders(body, 'workflow_job', 'other-delivery'));
    expect([first.statusCode, again.statusCode, redelivered.statusCode]).toEqual([202, 202, 202]);
    expect(first.json()).toEqual({ accepted: true, duplicate: false });
    expect(again.json()).toEqual({ accepted: true, duplicate: true });
    expect(sink.events).toHaveLength(1);
    expect(woken.map((e) => e.job.id)).toEqual([11]);
    expect(
      await metricValue(metrics, 'runner_fleet_webhooks_total', {
        event: 'workflow_job',
        result: 'duplicate',
      }),
    ).toBe(2);
    expect(
      await metricValue(metrics, 'runner_fleet_webhooks_total', {
        event: 'workflow_job',
        result: 'accepted',
      }),
    ).toBe(1);
  });

  it('persists before the reply is sent and wakes the reconciler only after it', async () => {
    const order: string[] = [];
    const sink = new MemorySink();
    sink.onAccept = () => order.push('persist');
    const { server } = await start({ sink, onWorkflowJob: () => order.push('wake') });
    server.app.addHook('onSend', async (request, _reply, payload) => {
      if (request.url === '/webhook') order.push('send');
      return payload;
    });
    const url = await server.listen();
    const body = JSON.stringify(workflowJobPayload({ jobId: 12 }));
    const res = await fetch(`${url}/webhook`, { method: 'POST', body, headers: await signedHeaders(body) });
    order.push('reply received');
    expect(res.status).toBe(202);
    // The wake-up runs when the response has finished on the server side; give a loaded machine time for that.
    for (let i = 0; i < 200 && !order.includes('wake'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(order.slice(0, 2)).toEqual(['persist', 'send']);
    expect(order).toContain('wake');
    expect(order.indexOf('wake')).toBeGreaterThan(order.indexOf('send'));
  });

  it('answers 503, not 202, when the event cannot be persisted, and keeps serving', async () => {
    const sink = new MemorySink();
    sink.failWith = new Error('database is locked');
    const { server, woken, metrics } = await start({ sink });
    const body = JSON.stringify(workflowJobPayload({ jobId: 13 }));
    const res = await server.app.inject({
      method: 'POST',
      url: '/webhook',
      payload: body,
      headers: await signedHeaders(body),
    });
    expect(res.statusCode).toBe(503);
    expect(woken).toHaveLength(0);
    expect(await metricValue(metrics, 'runner_fleet_webhooks_total', { result: 'unavailable' })).toBe(1);
    sink.failWith = null;
    const retry = await server.app.inject({
      method: 'POST',
      url: '/webhook',
      payload: body,
      headers: await signedHeaders(body),
    });
    expect(retry.statusCode).toBe(202);
    expect(woken).toHaveLength(1);
  });

  it('keeps running when the wake-up hook throws', async () => {
    const { server, sink } = await start({
      onWorkflowJob: () => {
        throw new Error('reconciler gone');
      },
    });
    const body = JSON.stringify(workflowJobPayload({ jobId: 14 }));
    const res = await server.app.inject({
      method: 'POST',
      url: '/webhook',
      payload: body,
      headers: await signedHeaders(body),
    });
    expect(res.statusCode).toBe(202);
    expect(sink.events).toHaveLength(1);
    expect((await server.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('writes no secret to any log line', async () => {
    const config = {
      server: { host: '127.0.0.1', port: 0, dashboardToken: 'dash-token-3c9e81aa' },
      webhook: { secret: SECRET },
    };
    const { logs } = await start({ config });
    const body = JSON.stringify(workflowJobPayload({ jobId: 15 }));
    await post(body, await signedHeaders(body));
    await post(body.replace('app', 'ap'), await signedHeaders(body));
    await post('{', await signedHeaders('{'));
    const failing = new MemorySink();
    failing.failWith = new Error(`disk full; secret was ${SECRET}`);
    const other = await startTestServer({ sink: failing, config });
    await other.server.app.inject({
      method: 'POST',
      url: '/webhook',
      payload: body,
      headers: await signedHeaders(body),
    });
    await other.server.close();
    const all = logs.text() + other.logs.text();
    expect(other.logs.text()).toContain('could not persist workflow_job');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain('dash-token-3c9e81aa');
    expect(all).toContain('[REDACTED]');
  });
});
