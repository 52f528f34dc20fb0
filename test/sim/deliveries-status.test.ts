/**
 * `GET /app/hook/deliveries?status=`: GitHub classifies by `status_code` (success 200-399, failure 400-599), so a
 * delivery that got no answer (receiver down: status code 0) is in neither list. A receiver that recovers lost
 * deliveries must list them all and look at each status; the simulator must not hide that by being more lenient.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../../src/sim/github/index.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { call } from './helpers.js';

let sim: Simulator;
let receiver: Server;
let receiverUrl = '';

beforeAll(async () => {
  // Answers 202, except 500 for jobs labelled `fail`.
  receiver = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      res.writeHead(raw.includes('"fail"') ? 500 : 202).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const address = receiver.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  receiverUrl = `http://127.0.0.1:${address.port}/webhook`;
  sim = await startSimulator({ orgs: ['octo-org'] });
});

afterAll(async () => {
  await sim?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

async function appJwt(): Promise<string> {
  const { createAppAuth } = await import('@octokit/auth-app');
  return (await createAppAuth({ appId: sim.appId, privateKey: sim.privateKeyPem })({ type: 'app' })).token;
}

describe('GET /app/hook/deliveries status filter', () => {
  it('puts 2xx in success, 5xx in failure, and an unanswered delivery in neither', async () => {
    sim.setWebhook(receiverUrl);
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['ok'] });
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['fail'] });
    await sim.webhooksIdle();
    // nobody listens here any more: connection refused, status code 0
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    sim.setWebhook(`http://127.0.0.1:${port}/webhook`);
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['down'] });
    await sim.webhooksIdle();

    const token = await appJwt();
    const list = async (status?: string) => {
      const query = status === undefined ? '' : `?status=${status}`;
      const r = await call(`${sim.apiUrl}/app/hook/deliveries${query}`, { token });
      expect(r.status).toBe(200);
      return (r.body as { status_code: number }[]).map((d) => d.status_code).sort();
    };
    expect(await list()).toEqual([0, 202, 500]);
    expect(await list('success')).toEqual([202]);
    expect(await list('failure')).toEqual([500]);
  });
});
