/**
 * What one HTTP exchange costs in CPU in this process, on this machine and Node version: the floor under the
 * controller's CPU per job, which needs a number of exchanges per job whatever it does around them. Two kinds,
 * each with the peer in a child process (its CPU is not this process's) on loopback, over one kept-alive
 * connection, the request spaced by `gapMs` as a controller's requests are (each exchange then wakes an idle event
 * loop, as in the controller; back to back they cost less) and back to back:
 *   - received: a bare node:http server here answers 202 to a POST carrying a workflow_job-sized body (what a
 *     webhook costs before any work of the controller's own: no framework, no signature, no store);
 *   - sent: a bare node:http client here POSTs a small JSON body to a server in the child and reads its answer
 *     (what a GitHub or provider call costs before any client library).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';

/** ms of CPU (user + system) of this process per exchange. */
export interface ExchangeCosts {
  readonly receivedSpaced: number;
  readonly receivedBackToBack: number;
  readonly sentSpaced: number;
  readonly sentBackToBack: number;
  readonly gapMs: number;
  readonly count: number;
  readonly bodyBytes: number;
}

/** The child: `server` answers every POST with 201 and a small JSON body; `client URL N GAP BYTES` sends POSTs. */
const CHILD = `
const http = require('node:http');
const [mode, url, n, gap, bytes] = process.argv.slice(1);
if (mode === 'server') {
  const server = http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
    req.resume();
    req.on('end', () => { res.writeHead(201, { 'content-type': 'application/json' }); res.end('{"id":1,"name":"r"}'); });
  });
  server.listen(0, '127.0.0.1', () => console.log(server.address().port));
} else {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = JSON.stringify({ action: 'queued', pad: 'x'.repeat(Number(bytes)) });
  const one = () => new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => { res.resume(); res.on('end', resolve); });
    req.on('error', reject);
    req.end(body);
  });
  (async () => {
    for (let i = 0; i < 20; i++) await one();
    console.log('warm');
    await new Promise((r) => process.stdin.once('data', r));
    for (let i = 0; i < Number(n); i++) {
      await one();
      if (Number(gap) > 0) await new Promise((r) => setTimeout(r, Number(gap)));
    }
    console.log('done');
    agent.destroy();
  })();
}
`;

/** Exchanges per block when waits alone are interleaved (sent, spaced). */
const EXCHANGE_BLOCK = 50;

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function child(args: string[]) {
  const proc = spawn(process.execPath, ['-e', CHILD, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout });
  const queue: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  lines.on('line', (line) => {
    const w = waiters.shift();
    if (w) w(line);
    else queue.push(line);
  });
  return {
    proc,
    line: () =>
      new Promise<string>((resolve) => {
        const q = queue.shift();
        if (q !== undefined) resolve(q);
        else waiters.push(resolve);
      }),
  };
}

async function received(count: number, gapMs: number, bodyBytes: number): Promise<number> {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end('{"accepted":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const c = child([
    'client',
    `http://127.0.0.1:${port}/webhook`,
    String(count),
    String(gapMs),
    String(bodyBytes),
  ]);
  try {
    await c.line(); // warm
    const before = cpuMs();
    c.proc.stdin.write('go\n');
    await c.line(); // done
    return (cpuMs() - before) / count;
  } finally {
    c.proc.kill();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

async function sent(count: number, gapMs: number): Promise<number> {
  const c = child(['server']);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const port = Number(await c.line());
    const body = JSON.stringify({ name: 'bench-runner-0001', runner_group_id: 1, labels: ['self-hosted'] });
    const one = () =>
      new Promise<void>((resolve, reject) => {
        const req = http.request(
          `http://127.0.0.1:${port}/jit`,
          {
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (d: Buffer) => chunks.push(d));
            res.on('end', () => {
              JSON.parse(Buffer.concat(chunks).toString());
              resolve();
            });
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    for (let i = 0; i < 20; i++) await one();
    const sleep = () => new Promise((r) => setTimeout(r, gapMs));
    if (gapMs <= 0) {
      const before = cpuMs();
      for (let i = 0; i < count; i++) await one();
      return (cpuMs() - before) / count;
    }
    // Spaced, the wait itself (a timer waking the loop) costs CPU too; in the controller something else wakes the
    // loop for a call. Blocks of exchanges each followed by a wait alternate with blocks of waits alone, and the
    // second are taken off the first, so drifts in the machine's load cancel out.
    let withCalls = 0;
    let waitsOnly = 0;
    for (let done = 0; done < count; done += EXCHANGE_BLOCK) {
      const n = Math.min(EXCHANGE_BLOCK, count - done);
      let t = cpuMs();
      for (let i = 0; i < n; i++) {
        await one();
        await sleep();
      }
      withCalls += cpuMs() - t;
      t = cpuMs();
      for (let i = 0; i < n; i++) await sleep();
      waitsOnly += cpuMs() - t;
    }
    return (withCalls - waitsOnly) / count;
  } finally {
    agent.destroy();
    c.proc.kill();
  }
}

/** Measures both kinds, spaced by `gapMs` and back to back; `bodyBytes` is the webhook body's size. */
export async function measureExchanges(
  options: { count?: number; gapMs?: number; bodyBytes?: number } = {},
): Promise<ExchangeCosts> {
  const count = options.count ?? 1000;
  const gapMs = options.gapMs ?? 10;
  const bodyBytes = options.bodyBytes ?? 8000;
  return {
    receivedSpaced: await received(count, gapMs, bodyBytes),
    receivedBackToBack: await received(count, 0, bodyBytes),
    sentSpaced: await sent(count, gapMs),
    sentBackToBack: await sent(count, 0),
    gapMs,
    count,
    bodyBytes,
  };
}
