/**
 * The Actions service's runner scale set protocol, driven over HTTP as actions/scaleset and actions-runner-controller
 * drive it: registration token -> RemoteAuth exchange -> runner group and scale set -> session -> long poll, ack,
 * acquire; jobs of the scale set's labels flow as JobAvailable / JobAssigned / JobStarted / JobCompleted; session
 * conflicts, refresh after 401, redelivery of unacknowledged messages, and the faults.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator } from '../../src/sim/github/index.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { ExitCode, runEmulatedRunner } from '../../src/sim/runner/index.js';
import { call, waitFor } from './helpers.js';

const V = 'api-version=6.0-preview';

let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({
    scaleSetPollTimeoutMs: 300,
    scaleSetSessionTimeoutMs: 600,
    scaleSetRedeliveryMs: 400,
    actionsAdminTokenTtlMs: 120_000,
    runnerOfflineAfterMs: 500,
  });
});

afterAll(async () => {
  await sim?.close();
});

beforeEach(async () => {
  await sim.reset();
});

interface Admin {
  url: string;
  token: string;
}

async function adminConnection(): Promise<Admin> {
  const reg = await call(`${sim.apiUrl}/orgs/octo-org/actions/runners/registration-token`, {
    method: 'POST',
    token: sim.token,
  });
  expect(reg.status).toBe(201);
  const regToken = (reg.body as { token: string }).token;
  const r = await call(`${sim.apiUrl}/actions/runner-registration`, {
    method: 'POST',
    headers: { authorization: `RemoteAuth ${regToken}` },
    body: { url: `${sim.baseUrl}/octo-org`, runner_event: 'register' },
  });
  expect(r.status).toBe(200);
  const body = r.body as { url: string; token: string };
  return { url: body.url, token: body.token };
}

const svc = (admin: Admin, path: string, options: Parameters<typeof call>[1] = {}) =>
  call(`${admin.url}${path}${path.includes('?') ? '&' : '?'}${V}`, { token: admin.token, ...options });

interface SessionBody {
  sessionId: string;
  messageQueueUrl: string;
  messageQueueAccessToken: string;
  statistics: Record<string, number>;
}

async function setUp(labels = ['scaleset-a']): Promise<{ admin: Admin; setId: number }> {
  const admin = await adminConnection();
  const groups = await svc(admin, '_apis/runtime/runnergroups/?groupName=Default');
  expect(groups.status).toBe(200);
  const group = (groups.body as { count: number; value: { id: number; isDefaultGroup: boolean }[] })
    .value[0]!;
  expect(group.isDefaultGroup).toBe(true);
  const created = await svc(admin, '_apis/runtime/runnerscalesets', {
    method: 'POST',
    body: {
      name: labels[0],
      runnerGroupId: group.id,
      labels: labels.map((name) => ({ name, type: 'System' })),
      runnerSetting: { disableUpdate: true },
    },
  });
  expect(created.status).toBe(200);
  return { admin, setId: (created.body as { id: number }).id };
}

async function openSession(admin: Admin, setId: number, owner = 'listener-1'): Promise<SessionBody> {
  const r = await svc(admin, `_apis/runtime/runnerscalesets/${setId}/sessions`, {
    method: 'POST',
    body: { ownerName: owner },
  });
  expect(r.status).toBe(200);
  return r.body as SessionBody;
}

async function poll(session: SessionBody, lastMessageId = 0) {
  const url = new URL(session.messageQueueUrl);
  if (lastMessageId > 0) url.searchParams.set('lastMessageId', String(lastMessageId));
  return call(url.toString(), {
    token: session.messageQueueAccessToken,
    headers: { accept: 'application/json; api-version=6.0-preview', 'X-ScaleSetMaxCapacity': '5' },
  });
}

interface Message {
  messageId: number;
  messageType: string;
  body: string;
  statistics: Record<string, number>;
}

const items = (m: Message) => JSON.parse(m.body) as Record<string, unknown>[];

async function ack(session: SessionBody, id: number) {
  const url = new URL(session.messageQueueUrl);
  url.pathname = `${url.pathname}/${id}`;
  return call(url.toString(), { method: 'DELETE', token: session.messageQueueAccessToken });
}

describe('runner scale set protocol', () => {
  it('exchanges a registration token for the service URL and a JWT admin token with exp', async () => {
    const admin = await adminConnection();
    const [, payload] = admin.token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { exp: number };
    expect(claims.exp * 1000).toBeGreaterThan(Date.now() + 60_000);
    // The wrong URL for the token, no token, and a bad api-version are refused.
    const wrong = await call(`${sim.apiUrl}/actions/runner-registration`, {
      method: 'POST',
      headers: { authorization: 'RemoteAuth NOPE' },
      body: { url: `${sim.baseUrl}/octo-org`, runner_event: 'register' },
    });
    expect(wrong.status).toBe(404);
    expect((await call(`${admin.url}_apis/runtime/runnerscalesets?${V}`)).status).toBe(401);
    const noVersion = await call(`${admin.url}_apis/runtime/runnerscalesets`, { token: admin.token });
    expect(noVersion.status).toBe(400);
  });

  it('creates, finds, updates and deletes a scale set; names are unique', async () => {
    const { admin, setId } = await setUp(['scaleset-crud']);
    const found = await svc(admin, '_apis/runtime/runnerscalesets?runnerGroupId=1&name=scaleset-crud');
    expect(found.body).toMatchObject({
      count: 1,
      value: [{ id: setId, name: 'scaleset-crud', runnerGroupId: 1 }],
    });
    const again = await svc(admin, '_apis/runtime/runnerscalesets', {
      method: 'POST',
      body: { name: 'scaleset-crud', runnerGroupId: 1, labels: [] },
    });
    expect(again.status).toBe(409);
    const patched = await svc(admin, `_apis/runtime/runnerscalesets/${setId}`, {
      method: 'PATCH',
      body: {
        labels: [
          { name: 'scaleset-crud', type: 'System' },
          { name: 'gpu', type: 'System' },
        ],
      },
    });
    expect((patched.body as { labels: { name: string }[] }).labels.map((l) => l.name)).toEqual([
      'scaleset-crud',
      'gpu',
    ]);
    expect((await svc(admin, `_apis/runtime/runnerscalesets/${setId}`, { method: 'DELETE' })).status).toBe(
      204,
    );
    const gone = await svc(admin, `_apis/runtime/runnerscalesets/${setId}`);
    expect(gone.status).toBe(404);
    expect((gone.body as { typeKey: string }).typeKey).toBe('RunnerScaleSetNotFoundException');
  });

  it('flows a job through Assigned, Started and Completed on a runner with the scale set JIT config', async () => {
    const { admin, setId } = await setUp(['scaleset-flow']);
    const session = await openSession(admin, setId);
    expect(session.statistics.totalAssignedJobs).toBe(0);
    expect((await poll(session)).status).toBe(202);

    const [job] = sim.createJobs({
      owner: 'octo-org',
      repo: 'app',
      labels: ['scaleset-flow'],
      durationMs: 50,
    });
    const first = await poll(session);
    expect(first.status).toBe(200);
    const m1 = first.body as Message;
    expect(m1.messageType).toBe('RunnerScaleSetJobMessages');
    const [assigned] = items(m1);
    expect(assigned).toMatchObject({
      messageType: 'JobAssigned',
      repositoryName: 'app',
      ownerName: 'octo-org',
      requestLabels: ['scaleset-flow'],
    });
    expect(m1.statistics.totalAssignedJobs).toBe(1);
    expect((await ack(session, m1.messageId)).status).toBe(204);

    const jit = await svc(admin, `_apis/runtime/runnerscalesets/${setId}/generatejitconfig`, {
      method: 'POST',
      body: { name: 'flow-runner-1', workFolder: '_work' },
    });
    expect(jit.status).toBe(200);
    const cfg = jit.body as { runner: { id: number; runnerScaleSetId: number }; encodedJITConfig: string };
    expect(cfg.runner.runnerScaleSetId).toBe(setId);
    expect(await runEmulatedRunner({ jitConfig: cfg.encodedJITConfig }, {})).toBe(ExitCode.Success);
    expect(sim.job(job!.id)!.status).toBe('completed');

    const seen: Record<string, unknown>[] = [];
    let last = m1.messageId;
    while (!seen.some((i) => i.messageType === 'JobCompleted')) {
      const r = await poll(session, last);
      if (r.status !== 200) continue;
      const m = r.body as Message;
      seen.push(...items(m));
      last = m.messageId;
      expect((await ack(session, m.messageId)).status).toBe(204);
    }
    const started = seen.find((i) => i.messageType === 'JobStarted')!;
    const completed = seen.find((i) => i.messageType === 'JobCompleted')!;
    expect(started).toMatchObject({ runnerId: cfg.runner.id, runnerName: 'flow-runner-1' });
    expect(completed).toMatchObject({ result: 'succeeded', runnerRequestId: assigned!.runnerRequestId });
    expect(sim.scaleSets()[0]!.statistics.totalAssignedJobs).toBe(0);
    expect(sim.scaleSets()[0]!.maxCapacity).toBe(5);
  });

  it('redelivers an unacknowledged message to a new session and, after a while, to the same one', async () => {
    const { admin, setId } = await setUp(['scaleset-redeliver']);
    const s1 = await openSession(admin, setId);
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['scaleset-redeliver'], durationMs: 50 });
    const m = (await poll(s1)).body as Message;
    // Not acknowledged: the next poll after it waits; past the redelivery time the same message comes again.
    expect((await poll(s1, m.messageId)).status).toBe(202);
    await new Promise((r) => setTimeout(r, 450));
    expect(((await poll(s1, m.messageId)).body as Message).messageId).toBe(m.messageId);
    // A new session (the old one deleted) gets it at once.
    const del = await svc(admin, `_apis/runtime/runnerscalesets/${setId}/sessions/${s1.sessionId}`, {
      method: 'DELETE',
    });
    expect(del.status).toBe(204);
    const s2 = await openSession(admin, setId, 'listener-2');
    expect(((await poll(s2)).body as Message).messageId).toBe(m.messageId);
    expect((await ack(s2, m.messageId)).status).toBe(204);
    expect(sim.scaleSets()[0]!.unacknowledged).toBe(0);
    // The old session's queue token is dead.
    expect((await poll(s1)).status).toBe(401);
  });

  it('answers 409 while a session is live, and lets a new one open once it expired', async () => {
    const { admin, setId } = await setUp(['scaleset-conflict']);
    await openSession(admin, setId, 'old-owner');
    const conflict = await svc(admin, `_apis/runtime/runnerscalesets/${setId}/sessions`, {
      method: 'POST',
      body: { ownerName: 'new-owner' },
    });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({
      typeKey: 'RunnerScaleSetSessionConflictException',
      message: expect.stringMatching(/already has an active session for owner old-owner/),
    });
    await new Promise((r) => setTimeout(r, 700));
    await openSession(admin, setId, 'new-owner');
    // Injected conflicts: the next N creations answer 409 even without a live session.
    sim.setFaults({ sessionConflicts: 1 });
    await new Promise((r) => setTimeout(r, 700));
    const injected = await svc(admin, `_apis/runtime/runnerscalesets/${setId}/sessions`, {
      method: 'POST',
      body: { ownerName: 'third' },
    });
    expect(injected.status).toBe(409);
    const third = await openSession(admin, setId, 'third');
    expect(
      (
        await svc(admin, `_apis/runtime/runnerscalesets/${setId}/sessions/${third.sessionId}`, {
          method: 'DELETE',
        })
      ).status,
    ).toBe(204);
    // The log: who held a session, from when to when and how it ended; who was refused, and for whom.
    const view = sim.scaleSets()[0]!;
    expect(view.session).toBeNull();
    expect(view.sessions.map((s) => [s.ownerName, s.end])).toEqual([
      ['old-owner', 'expired'],
      ['new-owner', 'expired'],
      ['third', 'deleted'],
    ]);
    const [oldOwner, newOwner] = view.sessions;
    // An expired session ended its timeout after its last call, before the next one opened.
    expect(oldOwner!.endedAt! - oldOwner!.openedAt).toBeGreaterThanOrEqual(600);
    expect(newOwner!.openedAt).toBeGreaterThanOrEqual(oldOwner!.endedAt!);
    expect(view.conflicts.map((c) => [c.ownerName, c.activeOwner])).toEqual([
      ['new-owner', 'old-owner'],
      ['third', 'stale-listener'],
    ]);
    const control = await call(`${sim.baseUrl}/_sim/scalesets`);
    expect((control.body as { scaleSets: unknown[] }).scaleSets[0]).toMatchObject({
      sessions: view.sessions,
      conflicts: view.conflicts,
    });
  });

  it('answers 401 on an expired queue token until the session is refreshed (PATCH)', async () => {
    const { admin, setId } = await setUp(['scaleset-401']);
    const s = await openSession(admin, setId);
    sim.expireQueueTokens();
    expect((await poll(s)).status).toBe(401);
    const refreshed = await svc(admin, `_apis/runtime/runnerscalesets/${setId}/sessions/${s.sessionId}`, {
      method: 'PATCH',
    });
    expect(refreshed.status).toBe(200);
    const s2 = refreshed.body as SessionBody;
    expect(s2.sessionId).toBe(s.sessionId);
    expect(s2.messageQueueAccessToken).not.toBe(s.messageQueueAccessToken);
    expect((await poll(s2)).status).toBe(202);
    sim.setFaults({ queueUnauthorizedRate: 1 });
    expect((await poll(s2)).status).toBe(401);
    sim.setFaults({ queueUnauthorizedRate: 0 });
  });

  it('drops long polls when told to (the connection resets)', async () => {
    const { admin, setId } = await setUp(['scaleset-drop']);
    const s = await openSession(admin, setId);
    sim.setFaults({ queueDropRate: 1 });
    await expect(poll(s)).rejects.toThrow();
    sim.setFaults({ queueDropRate: 0 });
    expect((await poll(s)).status).toBe(202);
  });

  it('offers jobs (JobAvailable) when acquiring is required, and assigns them on acquirejobs', async () => {
    const ghes = await startSimulator({ scaleSetAcquireJobs: true, scaleSetPollTimeoutMs: 300 });
    const outer = sim;
    sim = ghes;
    try {
      const { admin, setId } = await setUp(['scaleset-acquire']);
      const s = await openSession(admin, setId);
      sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: ['scaleset-acquire'],
        count: 2,
        durationMs: 50,
      });
      const m = (await poll(s)).body as Message;
      const offered = items(m);
      expect(offered.map((i) => i.messageType)).toEqual(['JobAvailable', 'JobAvailable']);
      expect(String(offered[0]!.acquireJobUrl)).toContain(`/runnerscalesets/${setId}/acquirejobs`);
      expect(m.statistics).toMatchObject({ totalAvailableJobs: 2, totalAssignedJobs: 0 });
      await ack(s, m.messageId);
      const ids = offered.map((i) => i.runnerRequestId as number);
      const acquired = await call(`${admin.url}_apis/runtime/runnerscalesets/${setId}/acquirejobs?${V}`, {
        method: 'POST',
        token: s.messageQueueAccessToken,
        body: ids,
      });
      expect(acquired.body).toEqual({ count: 2, value: ids });
      const next = (await poll(s, m.messageId)).body as Message;
      expect(items(next).map((i) => i.messageType)).toEqual(['JobAssigned', 'JobAssigned']);
      expect(next.statistics).toMatchObject({ totalAvailableJobs: 0, totalAssignedJobs: 2 });
    } finally {
      sim = outer;
      await ghes.close();
    }
  });

  it('batches a burst into messages of at most 50 items', async () => {
    const { admin, setId } = await setUp(['scaleset-burst']);
    const s = await openSession(admin, setId);
    sim.createJobs({
      owner: 'octo-org',
      repo: 'app',
      labels: ['scaleset-burst'],
      count: 120,
      durationMs: 50,
    });
    let total = 0;
    let last = 0;
    const sizes: number[] = [];
    await waitFor('120 items', async () => {
      const r = await poll(s, last);
      if (r.status === 200) {
        const m = r.body as Message;
        sizes.push(items(m).length);
        total += items(m).length;
        last = m.messageId;
        await ack(s, m.messageId);
      }
      return total >= 120;
    });
    expect(Math.max(...sizes)).toBeLessThanOrEqual(50);
    expect(sizes.length).toBe(3);
  });
});
