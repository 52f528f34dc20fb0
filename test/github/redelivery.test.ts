/**
 * Recovery of lost webhooks (src/github/redelivery.ts) against the simulator's deliveries API: events whose delivery
 * got no answer (receiver down) or an error are redelivered, oldest first, with their GUIDs, once delivered they are
 * left alone, a receiver that keeps failing is asked for a bounded number of times, a scan that hits its cap
 * leaves the rest to the next one, each delivery is read about once, and scheduled scans rest only while webhooks
 * arrive and the previous scan found nothing lost and no error answered.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookRedelivery } from '../../src/github/redelivery.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { clientFor, startSim } from './helpers.js';

interface Receiver {
  readonly url: string;
  /** [guid, action, job id] of each delivery answered 2xx. */
  readonly got: [string, string, number][];
  status: number;
  close(): Promise<void>;
}

async function receiver(status = 202): Promise<Receiver> {
  const r = { got: [] as [string, string, number][], status };
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      if (r.status < 300) {
        const body = JSON.parse(raw) as { action: string; workflow_job: { id: number } };
        r.got.push([String(req.headers['x-github-delivery']), body.action, body.workflow_job.id]);
      }
      res.writeHead(r.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return Object.assign(r, {
    url: `http://127.0.0.1:${port}/webhook`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

async function closedPort(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return `http://127.0.0.1:${port}/webhook`;
}

const silent = pino({ level: 'silent' });
let sim: Simulator | undefined;
let hook: Receiver | undefined;

afterEach(async () => {
  await sim?.close();
  await hook?.close();
  sim = hook = undefined;
});

describe('WebhookRedelivery', () => {
  it('redelivers, oldest first and with their GUIDs, the events sent while the receiver was down', async () => {
    sim = await startSim();
    hook = await receiver();
    sim.setWebhook(hook.url);
    const [seen] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['a'] });
    await sim.webhooksIdle();
    sim.setWebhook(await closedPort());
    const lost = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['b'], count: 3 });
    sim.cancelJob(lost[0]!.id); // queued, then completed: both lost
    await sim.webhooksIdle();
    expect(hook.got.map((g) => g[2])).toEqual([seen!.id]);

    sim.setWebhook(hook.url);
    const t = clientFor(sim);
    // one at a time, so the order of the requests is the order asked for
    const redelivery = new WebhookRedelivery({
      github: t.client,
      logger: silent,
      settleMs: 0,
      concurrency: 1,
    });
    const scan = await redelivery.scan();
    expect(scan).toMatchObject({ lost: 4, redelivered: 4, failed: 0 });
    await sim.webhooksIdle();
    const again = hook.got.slice(1);
    // asked for oldest first: each job's queued (in the order they were queued), then the completed
    const listed = await t.client.listWebhookDeliveries(0);
    const byId = new Map(listed.map((d) => [d.id, d]));
    const jobOf = new Map(again.map(([guid, , id]) => [guid, id]));
    const asked = t.sent
      .filter((r) => r.method === 'POST' && r.url.includes('/app/hook/deliveries/'))
      .map((r) => byId.get(Number(/deliveries\/(\d+)\/attempts/.exec(r.url)![1]))!)
      .map((d) => `${jobOf.get(d.guid)}:${d.action}`);
    expect(asked).toEqual([
      `${lost[0]!.id}:queued`,
      `${lost[1]!.id}:queued`,
      `${lost[2]!.id}:queued`,
      `${lost[0]!.id}:completed`,
    ]);
    // each arrived once, with the GUID of its failed attempt: the store's deduplication still works
    expect(again).toHaveLength(4);
    const failedGuids = new Set(listed.filter((d) => d.statusCode === 0).map((d) => d.guid));
    expect(new Set(again.map(([guid]) => guid))).toEqual(failedGuids);

    // delivered now: the next scan asks for nothing
    expect(t.count('POST /app/hook/deliveries/{delivery_id}/attempts', 202)).toBe(4);
    expect(await redelivery.scan()).toMatchObject({ lost: 0, redelivered: 0 });
    expect(t.count('POST /app/hook/deliveries/{delivery_id}/attempts')).toBe(4);
  });

  it('asks at most maxAttempts times for an event the receiver keeps refusing', async () => {
    sim = await startSim();
    hook = await receiver(500);
    sim.setWebhook(hook.url);
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['a'] });
    await sim.webhooksIdle();
    const t = clientFor(sim);
    const redelivery = new WebhookRedelivery({
      github: t.client,
      logger: silent,
      settleMs: 0,
      maxAttempts: 2,
    });
    for (let i = 0; i < 4; i++) {
      await redelivery.scan();
      await sim.webhooksIdle();
    }
    expect(t.count('POST /app/hook/deliveries/{delivery_id}/attempts', 202)).toBe(2);
  });

  it('leaves what a capped scan did not reach to the next scan, and skips attempts that may still be in flight', async () => {
    sim = await startSim();
    sim.setWebhook(await closedPort());
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['a'], count: 3 });
    await sim.webhooksIdle();
    hook = await receiver();
    sim.setWebhook(hook.url);
    const t = clientFor(sim);
    const patient = new WebhookRedelivery({ github: t.client, logger: silent, settleMs: 60_000 });
    expect(await patient.scan()).toMatchObject({ listed: 3, lost: 0, redelivered: 0 });
    const capped = new WebhookRedelivery({ github: t.client, logger: silent, settleMs: 0, maxPerScan: 2 });
    expect(await capped.scan()).toMatchObject({ lost: 3, redelivered: 2 });
    expect(await capped.scan()).toMatchObject({ redelivered: 1 });
    await sim.webhooksIdle();
    expect(hook.got).toHaveLength(3);
  });

  it('asks again, in a later scan, for an event whose redelivery GitHub refused, however far the window moved', async () => {
    sim = await startSim();
    sim.setWebhook(await closedPort());
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['a'], count: 2 });
    await sim.webhooksIdle();
    hook = await receiver();
    sim.setWebhook(hook.url);
    const t = clientFor(sim);
    // GitHub refuses the first scan's redelivery requests (a 5xx that outlived the client's retries).
    let refuse = true;
    const github = {
      canRedeliver: true,
      listWebhookDeliveries: t.client.listWebhookDeliveries.bind(t.client),
      redeliverWebhook: async (id: number, signal?: AbortSignal) => {
        if (refuse) throw Object.assign(new Error('Server Error'), { status: 500 });
        return t.client.redeliverWebhook(id, signal);
      },
    } as unknown as typeof t.client;
    // Scans well after the events: each window starts later than they happened.
    let now = Date.now() + 60_000;
    const redelivery = new WebhookRedelivery({ github, logger: silent, settleMs: 0, now: () => now });
    expect(await redelivery.scan()).toMatchObject({ lost: 2, redelivered: 0, failed: 2 });
    refuse = false;
    now += 60_000;
    expect(await redelivery.scan()).toMatchObject({ lost: 2, redelivered: 2, failed: 0 });
    await sim.webhooksIdle();
    expect(hook.got).toHaveLength(2);
    // Delivered: the window moves on, and nothing is asked for again.
    now += 60_000;
    expect(await redelivery.scan()).toMatchObject({ lost: 0, redelivered: 0 });
  });

  it('starts a restarted controller shortly before its last received webhook, not a whole lookback earlier', async () => {
    sim = await startSim();
    sim.setWebhook(await closedPort());
    const [old] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['old'] });
    await sim.webhooksIdle();
    const t = clientFor(sim);
    const [oldAttempt] = await t.client.listWebhookDeliveries(0);
    // delivered_at has whole seconds, as on GitHub: the next delivery goes out in a later second
    while (Date.now() < oldAttempt!.deliveredAt + 1000) await new Promise((r) => setTimeout(r, 20));
    const [recent] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['recent'] });
    await sim.webhooksIdle();
    const lastReceived = (await t.client.listWebhookDeliveries(0))[0]!.deliveredAt;
    hook = await receiver();
    sim.setWebhook(hook.url);
    const resumed = new WebhookRedelivery({
      github: t.client,
      logger: silent,
      settleMs: 0,
      overlapMs: 0,
      resumeFrom: () => lastReceived,
    });
    expect(await resumed.scan()).toMatchObject({ listed: 1, lost: 1, redelivered: 1 });
    await sim.webhooksIdle();
    expect(hook.got.map((g) => g[2])).toEqual([recent!.id]);
    // a capped first scan keeps its window, though the last received delivery moves on as redeliveries arrive
    const lastBefore = (await t.client.listWebhookDeliveries(0))[0]!.deliveredAt;
    sim.setWebhook(await closedPort());
    const more = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['more'], count: 3 });
    await sim.webhooksIdle();
    sim.setWebhook(hook.url);
    let last = lastBefore;
    const capped = new WebhookRedelivery({
      github: t.client,
      logger: silent,
      settleMs: 0,
      overlapMs: 0,
      maxPerScan: 2,
      resumeFrom: () => last,
    });
    expect(await capped.scan()).toMatchObject({ redelivered: 2 });
    await sim.webhooksIdle();
    last = Date.now() + 5000; // as if the redeliveries were just received
    expect(await capped.scan()).toMatchObject({ redelivered: 1 });
    await sim.webhooksIdle();
    expect(
      hook.got
        .slice(1)
        .map((g) => g[2])
        .sort(),
    ).toEqual(more.map((j) => j.id).sort());
    hook.got.splice(1);

    // with nothing on record, the whole lookback is searched
    const fresh = new WebhookRedelivery({ github: t.client, logger: silent, settleMs: 0 });
    expect(await fresh.scan()).toMatchObject({ lost: 1, redelivered: 1 });
    await sim.webhooksIdle();
    expect(hook.got.map((g) => g[2])).toEqual([recent!.id, old!.id]);
  });

  it('runs on a schedule until stopped', async () => {
    sim = await startSim();
    sim.setWebhook(await closedPort());
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['a'] });
    await sim.webhooksIdle();
    hook = await receiver();
    sim.setWebhook(hook.url);
    const t = clientFor(sim);
    const redelivery = new WebhookRedelivery({ github: t.client, logger: silent, settleMs: 0 });
    redelivery.start(20);
    const deadline = Date.now() + 10_000;
    while (hook.got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await redelivery.stop();
    // (requests sent: one aborted by stop() is still answered, and counted, a little later)
    const lists = () =>
      t.sent.filter((r) => r.method === 'GET' && r.url.includes('/app/hook/deliveries')).length;
    const listed = lists();
    await new Promise((r) => setTimeout(r, 100));
    expect(hook.got).toHaveLength(1);
    expect(listed).toBeGreaterThanOrEqual(1);
    expect(lists()).toBe(listed);
  });

  it('reads each delivery about once: a later scan pages only down to what an earlier one found settled', async () => {
    sim = await startSim();
    hook = await receiver();
    sim.setWebhook(hook.url);
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['a'], count: 250 });
    await sim.webhooksIdle();
    const t = clientFor(sim);
    const redelivery = new WebhookRedelivery({ github: t.client, logger: silent, settleMs: 0 });
    expect(await redelivery.scan()).toMatchObject({ listed: 250, lost: 0 });
    expect(t.count('GET /app/hook/deliveries')).toBe(3); // 100 a page
    // 30 more delivered and one lost, all within the time window of the previous scan
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['b'], count: 30 });
    await sim.webhooksIdle();
    sim.setWebhook(await closedPort());
    const [lost] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['c'] });
    await sim.webhooksIdle();
    sim.setWebhook(hook.url);
    expect(await redelivery.scan()).toMatchObject({ listed: 31, lost: 1, redelivered: 1 });
    expect(t.count('GET /app/hook/deliveries')).toBe(4); // one page, not the 281 deliveries again
    await sim.webhooksIdle();
    expect(hook.got.at(-1)?.[2]).toBe(lost!.id);
    // the redelivery is all that is new
    expect(await redelivery.scan()).toMatchObject({ listed: 1, lost: 0 });
  });

  it('while webhooks arrive and the previous scan found nothing wrong, rests every other scheduled scan, never after a loss', async () => {
    sim = await startSim();
    hook = await receiver();
    sim.setWebhook(hook.url);
    const { redelivery, tick, lists, received } = await manualScans(clientFor(sim), 0);
    expect(lists()).toBe(1);
    // nothing received since: no sign the webhooks get through, so every tick scans
    await tick();
    expect(lists()).toBe(2);
    received(Date.now());
    await tick(); // webhooks arrive and the previous scan left nothing open: this one rests
    expect(lists()).toBe(2);
    // a webhook is lost meanwhile: the next scan (not a second rest) finds it
    sim.setWebhook(await closedPort());
    const [lost] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['a'] });
    await sim.webhooksIdle();
    sim.setWebhook(hook.url);
    received(Date.now());
    await tick();
    expect(lists()).toBe(3);
    await sim.webhooksIdle();
    expect(hook.got.map((g) => g[2])).toEqual([lost!.id]);
    // that scan found a loss: the next one does not rest, though webhooks arrive
    received(Date.now());
    await tick();
    expect(lists()).toBe(4);
    received(Date.now());
    await tick();
    expect(lists()).toBe(4);
    await redelivery.stop();
  });

  it('does not rest after an attempt answered with an error, still settling; one with no answer yet is no reason', async () => {
    sim = await startSim();
    hook = await receiver(500);
    // every attempt of this test is still settling: none counts as lost yet
    const { redelivery, tick, lists, received } = await manualScans(clientFor(sim), 60_000);
    expect(lists()).toBe(1);
    // an attempt without an answer (nobody listening), as an attempt still in flight looks
    sim.setWebhook(await closedPort());
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['a'] });
    await sim.webhooksIdle();
    received(Date.now());
    await tick(); // rests
    await tick();
    expect(lists()).toBe(2); // sees it, unsettled
    received(Date.now());
    await tick();
    expect(lists()).toBe(2); // rests all the same: the next scan still pages down to it
    // an attempt answered 500
    sim.setWebhook(hook.url);
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['b'] });
    await sim.webhooksIdle();
    await tick();
    expect(lists()).toBe(3); // sees it
    received(Date.now());
    await tick();
    expect(lists()).toBe(4); // no rest, though webhooks arrive
    await redelivery.stop();
  });

  it('needs App authentication', async () => {
    sim = await startSim();
    const t = clientFor(sim, { auth: 'pat' });
    expect(t.client.canRedeliver).toBe(false);
    await expect(t.client.listWebhookDeliveries(0)).rejects.toMatchObject({ code: 'unauthorized' });
    expect(clientFor(sim).client.canRedeliver).toBe(true);
  });
});

/**
 * A redelivery scanner on manual timers, started: `tick()` runs the next scheduled scan and waits until it has
 * scheduled the one after; `lists()` counts the deliveries pages GitHub was asked for; `received(at)` is what the
 * store reports as its last webhook.
 */
async function manualScans(t: ReturnType<typeof clientFor>, settleMs: number) {
  const timers: (() => void)[] = [];
  let lastReceived: number | null = null;
  const redelivery = new WebhookRedelivery({
    github: t.client,
    logger: silent,
    settleMs,
    resumeFrom: () => lastReceived,
    setTimeout: (fn) => timers.push(fn),
    clearTimeout: () => undefined,
  });
  const tick = async (): Promise<void> => {
    const n = timers.length;
    timers[n - 1]!();
    while (timers.length === n) await new Promise((r) => setTimeout(r, 5));
  };
  redelivery.start(30_000);
  while (timers.length === 0) await new Promise((r) => setTimeout(r, 5));
  return {
    redelivery,
    tick,
    lists: () => t.count('GET /app/hook/deliveries'),
    received: (at: number) => void (lastReceived = at),
  };
}
