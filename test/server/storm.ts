/**
 * The slow-client storm, shared by test/server/slow-clients.test.ts and `npm run reliability`: N clients each
 * declare a large webhook body, send most of it, then trickle one byte every few seconds, while real signed
 * workflow_job webhooks keep arriving. Measures the server's resident memory (from /proc) before, at the peak and
 * after, how each slow client ended, and what the real webhooks got.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildServer, RawResult } from './child.js';
import { slowClient } from './child.js';
import { signedHeaders, workflowJobPayload } from './helpers.js';

export interface StormOptions {
  readonly clients: number;
  /** Declared Content-Length of each slow client's body. */
  readonly declared: number;
  /** Bytes each sends at once before trickling. */
  readonly bodyBytes: number;
  readonly trickleMs: number;
  /** A real signed webhook is sent this often during the storm. */
  readonly realEveryMs: number;
  /** Quiet time after the storm before memory is measured again. */
  readonly settleMs: number;
}

export const DEFAULT_STORM: StormOptions = {
  clients: 400,
  declared: 1_000_000,
  bodyBytes: 900_000,
  trickleMs: 5_000,
  realEveryMs: 500,
  settleMs: 5_000,
};

export interface StormReport {
  readonly options: StormOptions;
  readonly rssBefore: number;
  readonly rssPeak: number;
  readonly rssAfter: number;
  /** How the slow clients' connections ended: HTTP status or `closed` (cut off without an answer). */
  readonly slowOutcomes: Record<string, number>;
  /** Slow clients still connected at the deadline (must be 0). */
  readonly slowStillOpen: number;
  /** Longest time a slow client kept its connection, in ms. */
  readonly slowLongestMs: number;
  readonly realStatuses: Record<string, number>;
  readonly realSent: number;
  readonly stormMs: number;
}

function tally(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const value of values) out[value] = (out[value] ?? 0) + 1;
  return out;
}

async function realWebhook(url: string): Promise<string> {
  const body = JSON.stringify(workflowJobPayload({ jobId: Math.floor(Math.random() * 1e12) + 1 }));
  try {
    const res = await fetch(`${url}/webhook`, {
      method: 'POST',
      body,
      headers: await signedHeaders(body),
      signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer();
    return String(res.status);
  } catch (error) {
    return (error as Error).name;
  }
}

export async function runStorm(
  server: ChildServer,
  options: StormOptions = DEFAULT_STORM,
): Promise<StormReport> {
  // Warm up (JIT, first allocations), then take the baseline.
  for (let i = 0; i < 20; i++) await realWebhook(server.url);
  await sleep(1_000);
  const rssBefore = server.rss();
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    try {
      rssPeak = Math.max(rssPeak, server.rss());
    } catch {
      // The process is gone: the caller sees it.
    }
  }, 100);

  const started = Date.now();
  const deadlineMs = 60_000;
  const clients: Promise<RawResult>[] = [];
  for (let i = 0; i < options.clients; i++) {
    clients.push(slowClient(server.port, { ...options, deadlineMs }).result);
    if (i % 50 === 49) await sleep(20);
  }
  const real: Promise<string>[] = [];
  let stormDone = false;
  const results = Promise.all(clients).finally(() => (stormDone = true));
  while (!stormDone) {
    real.push(realWebhook(server.url));
    await Promise.race([sleep(options.realEveryMs), results]);
  }
  const slow = await results;
  const stormMs = Date.now() - started;
  const realStatuses = tally(await Promise.all(real));
  await sleep(options.settleMs);
  clearInterval(sampler);
  const rssAfter = server.rss();
  return {
    options,
    rssBefore,
    rssPeak,
    rssAfter,
    slowOutcomes: tally(
      slow.filter((r) => r.closedByServer).map((r) => (r.status === null ? 'closed' : String(r.status))),
    ),
    slowStillOpen: slow.filter((r) => !r.closedByServer).length,
    slowLongestMs: Math.max(...slow.map((r) => r.ms)),
    realStatuses,
    realSent: real.length,
    stormMs,
  };
}
