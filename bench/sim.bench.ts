/**
 * GitHub simulator throughput. The simulator runs as `runner-fleet simulate` in its own process (one Node event
 * loop = one core for its JavaScript); autocannon drives it from this process over loopback with an installation
 * token obtained through the App's JWT, as the controller would.
 * 1. REST mix: half POST generate-jitconfig (each a new runner name), half GET list runners (100 a page).
 * 2. Listing 10,000 registered runners at 100 a page: sequential GETs through all 100 pages, time per page.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import { createAppAuth } from '@octokit/auth-app';
import { SimProcess } from './fleet-peers.js';
import type { BenchResult, Benchmark } from './harness.js';

const MIX_TARGET_RPS = 2000;
const PAGE_TARGET_MS = 5;
const CONNECTIONS = 16;
const WARMUP_S = 3;
const DURATION_S = 15;
const RUNNERS = 10_000;

interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
}
interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  statusCodeStats: Record<string, { count: number }>;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  requests?: AutocannonRequest[];
}) => Promise<AutocannonResult>;

// autocannon ships no type declarations; the shape used here is declared above.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const benchmark: Benchmark = {
  id: 'sim',
  title: 'GitHub simulator: REST throughput and runner listing',
  limits:
    "raised to 10,000,000 an hour and a minute: this measures the simulator's own throughput (what a " +
    "test can ask of it), not a client of GitHub; at GitHub's limits the mix would be refused after 180 POSTs",
  async run(log) {
    const sim = await SimProcess.start(
      ['--rate-limit', '10000000', '--secondary-limit', '10000000', '--jit-expiry-ms', '3600000'],
      { logLevel: 'warn' },
    );
    const { info } = sim;
    try {
      const org = info.installations[0]!.account;
      const auth = createAppAuth({
        appId: info.appId,
        privateKey: readFileSync(info.privateKeyFile, 'utf8'),
        installationId: info.installations[0]!.id,
        request: (await import('@octokit/request')).request.defaults({ baseUrl: info.apiUrl }),
      });
      const { token } = await auth({ type: 'installation' });
      const headers = {
        authorization: `token ${token}`,
        'content-type': 'application/json',
        accept: 'application/vnd.github+json',
      };
      const runnersPath = `/orgs/${org}/actions/runners`;
      let n = 0;
      const mix: AutocannonRequest[] = [
        {
          method: 'POST',
          path: `${runnersPath}/generate-jitconfig`,
          headers,
          setupRequest: (request) => ({
            ...request,
            body: JSON.stringify({
              name: `bench-${process.pid}-${++n}`,
              runner_group_id: 1,
              labels: ['linux', 'x64'],
            }),
          }),
        },
        { method: 'GET', path: `${runnersPath}?per_page=100`, headers },
      ];

      log(
        `warm-up ${WARMUP_S} s, then ${DURATION_S} s with ${CONNECTIONS} connections (simulator pid ${sim.pid})`,
      );
      await autocannon({ url: info.apiUrl, connections: CONNECTIONS, duration: WARMUP_S, requests: mix });
      const result = await autocannon({
        url: info.apiUrl,
        connections: CONNECTIONS,
        duration: DURATION_S,
        requests: mix,
      });
      const failed = result.non2xx + result.errors;
      log(
        `mix: ${result.requests.total} requests, ${failed} failed, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`,
      );
      log(`status codes: ${JSON.stringify(result.statusCodeStats)}`);

      // Bring the organization to exactly RUNNERS registered runners for the listing measurement.
      const listUrl = `${info.apiUrl}${runnersPath}`;
      const first = (await (await fetch(`${listUrl}?per_page=1`, { headers })).json()) as {
        total_count: number;
      };
      let registered = first.total_count;
      log(`${registered} runners registered after the mix`);
      if (registered > RUNNERS) {
        // Trim the surplus through the API (DELETE), oldest first.
        while (registered > RUNNERS) {
          const page = (await (await fetch(`${listUrl}?per_page=100`, { headers })).json()) as {
            runners: { id: number }[];
          };
          const surplus = page.runners.slice(0, Math.min(100, registered - RUNNERS));
          await Promise.all(
            surplus.map((r) =>
              fetch(`${listUrl}/${r.id}`, { method: 'DELETE', headers }).then((x) => x.arrayBuffer()),
            ),
          );
          registered -= surplus.length;
        }
      } else {
        const missing = RUNNERS - registered;
        for (let i = 0; i < missing; i += 50) {
          await Promise.all(
            Array.from({ length: Math.min(50, missing - i) }, (_, k) =>
              fetch(`${listUrl}/generate-jitconfig`, {
                method: 'POST',
                headers,
                body: JSON.stringify({ name: `fill-${i + k}`, runner_group_id: 1, labels: ['linux'] }),
              }).then((x) => x.arrayBuffer()),
            ),
          );
        }
      }
      const check = (await (await fetch(`${listUrl}?per_page=1`, { headers })).json()) as {
        total_count: number;
      };
      if (check.total_count !== RUNNERS)
        throw new Error(`expected ${RUNNERS} runners, found ${check.total_count}`);

      const pageTimes: number[] = [];
      for (let round = 0; round < 3; round++) {
        let seen = 0;
        for (let page = 1; page <= RUNNERS / 100; page++) {
          const started = performance.now();
          const response = await fetch(`${listUrl}?per_page=100&page=${page}`, { headers });
          const body = (await response.json()) as { runners: unknown[] };
          const elapsed = performance.now() - started;
          if (response.status !== 200 || body.runners.length !== 100)
            throw new Error(`page ${page}: ${response.status}, ${body.runners.length} runners`);
          seen += body.runners.length;
          if (round > 0) pageTimes.push(elapsed);
        }
        if (seen !== RUNNERS) throw new Error(`listed ${seen} runners`);
      }
      pageTimes.sort((a, b) => a - b);
      const mean = pageTimes.reduce((a, b) => a + b, 0) / pageTimes.length;
      log(
        `listing: ${pageTimes.length} pages timed (2 rounds after a warm-up round), mean ${mean.toFixed(2)} ms`,
      );

      const rps = result.requests.average;
      const load = os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' / ');
      const results: BenchResult[] = [
        {
          name: 'sim.rest.mix.throughput',
          value: Math.round(rps),
          unit: 'req/s',
          target: `>= ${MIX_TARGET_RPS}`,
          pass: rps >= MIX_TARGET_RPS && failed === 0,
          notes: `50% POST generate-jitconfig (new runner each) + 50% GET list runners (per_page=100), installation token, ${CONNECTIONS} connections, ${DURATION_S} s after ${WARMUP_S} s warm-up; simulator in its own process (one event loop); ${failed} non-2xx/errors`,
        },
        { name: 'sim.rest.mix.p99', value: result.latency.p99, unit: 'ms' },
        {
          name: 'sim.list-runners.page.mean',
          value: Number(mean.toFixed(2)),
          unit: 'ms',
          target: `< ${PAGE_TARGET_MS}`,
          pass: mean < PAGE_TARGET_MS,
          notes: `${RUNNERS} registered runners, 100 a page, sequential HTTP GETs over loopback including client parsing`,
        },
        {
          name: 'sim.list-runners.page.p50',
          value: Number(percentile(pageTimes, 50).toFixed(2)),
          unit: 'ms',
        },
        {
          name: 'sim.list-runners.page.p99',
          value: Number(percentile(pageTimes, 99).toFixed(2)),
          unit: 'ms',
          notes: `tail of the same ${pageTimes.length} pages; building a page's JSON in the simulator takes about 0.2 ms, the rest is HTTP on a shared machine (load average ${load} during the run)`,
        },
      ];
      return results;
    } finally {
      await sim.stop();
    }
  },
};
