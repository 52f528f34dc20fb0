/**
 * Slow clients against the server in a process of its own (test/server/child-server.ts), over real sockets: one
 * slow client is cut off within the stated bound (docs/security.md, "Limits and timeouts"), and a storm of 400
 * clients that each send 900 KB and then trickle a byte every 5 s neither stops real signed webhooks from being
 * accepted meanwhile nor leaves the server's memory up afterwards. `npm run reliability` runs the same storm and
 * records its figures in RELIABILITY.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_LIMITS } from '../../src/server/server.js';
import { rawExchange, slowClient, startChildServer } from './child.js';
import type { ChildServer } from './child.js';
import { DEFAULT_STORM, runStorm } from './storm.js';

const MiB = 1024 * 1024;
/** The bound a slow client is cut off within, plus slack for a loaded machine. */
const BODY_CUTOFF_MS = SERVER_LIMITS.requestTimeoutMs + SERVER_LIMITS.checkIntervalMs;
const HEADERS_CUTOFF_MS = SERVER_LIMITS.headersTimeoutMs + SERVER_LIMITS.checkIntervalMs;
const SLACK_MS = 5_000;

let server: ChildServer;
beforeAll(async () => {
  server = await startChildServer('info', '/dev/null');
}, 90_000);
afterAll(async () => {
  await server?.stop();
});

describe('slow clients', () => {
  it('cuts off a client that trickles its body, and one that trickles its headers, within the stated bound', async () => {
    const body = slowClient(server.port, {
      declared: 50_000,
      bodyBytes: 1_000,
      trickleMs: 1_000,
      deadlineMs: 60_000,
    });
    const headers = (async () => {
      const started = Date.now();
      // Half a request line, then one header byte a second: never a complete header block.
      const socket = await import('node:net').then((net) => net.connect(server.port, '127.0.0.1'));
      socket.write('POST /webhook HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      const timer = setInterval(() => socket.write('a'), 1_000);
      let response = '';
      socket.on('data', (chunk) => (response += chunk.toString('latin1')));
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        setTimeout(resolve, 60_000);
      });
      clearInterval(timer);
      socket.destroy();
      return { ms: Date.now() - started, response };
    })();
    const [b, h] = await Promise.all([body.result, headers]);
    expect(b.closedByServer).toBe(true);
    expect(b.ms).toBeLessThanOrEqual(BODY_CUTOFF_MS + SLACK_MS);
    expect(b.ms).toBeGreaterThanOrEqual(SERVER_LIMITS.requestTimeoutMs - 1_000);
    expect([408, null]).toContain(b.status);
    expect(h.ms).toBeLessThanOrEqual(HEADERS_CUTOFF_MS + SLACK_MS);
    expect(h.response).toMatch(/^HTTP\/1\.1 408/);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  }, 90_000);

  it('refuses a bad request from its headers alone, without waiting for its body', async () => {
    // Declares 900 KB and sends none of it: the answer must come at once.
    const head = (extra: string) =>
      `POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 900000\r\n${extra}\r\n`;
    const signature = `X-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\n`;
    const cases: [string, string, number][] = [
      ['no signature', head('X-GitHub-Event: workflow_job\r\n'), 401],
      [
        'a malformed signature',
        head('X-GitHub-Event: workflow_job\r\nX-Hub-Signature-256: sha1=00\r\n'),
        401,
      ],
      ['no event', head(signature), 400],
      ['a malformed event', head(`${signature}X-GitHub-Event: ../etc\r\n`), 400],
      [
        'an 8 KB delivery id',
        head(`${signature}X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: ${'d'.repeat(8_000)}\r\n`),
        400,
      ],
      [
        'a body over the limit',
        `POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n${signature}X-GitHub-Event: workflow_job\r\n\r\n`,
        413,
      ],
      [
        'no Content-Length (chunked)',
        `POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n${signature}X-GitHub-Event: workflow_job\r\n\r\n`,
        411,
      ],
    ];
    for (const [name, bytes, status] of cases) {
      const result = await rawExchange(server.port, bytes, 8_000);
      expect(result.status, name).toBe(status);
      expect(result.ms, name).toBeLessThan(5_000);
    }
  }, 60_000);

  it('stays responsive and gives its memory back after a storm of 400 slow clients', async () => {
    const report = await runStorm(server, DEFAULT_STORM);
    const figures = {
      rssBeforeMiB: Math.round(report.rssBefore / MiB),
      rssPeakMiB: Math.round(report.rssPeak / MiB),
      rssAfterMiB: Math.round(report.rssAfter / MiB),
      slowOutcomes: report.slowOutcomes,
      slowLongestMs: report.slowLongestMs,
      realStatuses: report.realStatuses,
    };
    console.info(`slow-client storm: ${JSON.stringify(figures)}`);
    expect(report.slowStillOpen).toBe(0);
    expect(report.slowLongestMs).toBeLessThanOrEqual(BODY_CUTOFF_MS + SLACK_MS);
    // Every real webhook sent during the storm was accepted.
    expect(report.realSent).toBeGreaterThanOrEqual(5);
    expect(report.realStatuses).toEqual({ '202': report.realSent });
    // Before the limits: +309 MiB that stayed. Now the large bodies in flight are capped at 8 MiB.
    expect(report.rssPeak - report.rssBefore).toBeLessThan(150 * MiB);
    expect(report.rssAfter - report.rssBefore).toBeLessThan(64 * MiB);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  }, 180_000);
});
