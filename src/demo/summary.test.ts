import { describe, expect, it } from 'vitest';
import { formatSummary, percentile, percentiles, summarize } from './summary.js';
import type { SummaryInput } from './summary.js';

const sets = [
  { name: 'linux-process', provider: 'process', max: 8 },
  { name: 'linux-cloud', provider: 'sim', max: 60 },
];

function input(overrides: Partial<SummaryInput> = {}): SummaryInput {
  const t = 1_000_000;
  return {
    queued: { routable: [1, 2, 3, 4], unroutable: [5], cancelled: [4] },
    records: [
      {
        id: 1,
        status: 'completed',
        conclusion: 'success',
        runnerName: 'linux-process-abcd1234',
        queuedAt: t,
        startedAt: t + 1000,
      },
      {
        id: 2,
        status: 'completed',
        conclusion: 'success',
        runnerName: 'linux-cloud-abcd1234',
        queuedAt: t,
        startedAt: t + 200,
      },
      {
        id: 3,
        status: 'completed',
        conclusion: 'success',
        runnerName: 'linux-cloud-zzzz9999',
        queuedAt: t,
        startedAt: t + 400,
      },
      { id: 4, status: 'completed', conclusion: 'cancelled', runnerName: null, queuedAt: t, startedAt: null },
      { id: 5, status: 'queued', conclusion: null, runnerName: null, queuedAt: t, startedAt: null },
    ],
    reportedUnroutable: [5],
    githubApiCalls: 9,
    maxConcurrentRunners: 3,
    peakRunnersBySet: new Map([['linux-cloud', 2]]),
    scaleSets: sets,
    leakedRunners: 0,
    leakedInstances: 0,
    durationMs: 12_345.6,
    ...overrides,
  };
}

describe('summary', () => {
  it('nearest-rank percentiles', () => {
    expect(percentile([], 50)).toBe(0);
    expect(percentile([5], 95)).toBe(5);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentiles(hundred)).toEqual({ p50: 50, p95: 95, max: 100 });
  });

  it('is ok when every routable job completed, the unroutable one was reported and nothing leaked', () => {
    const s = summarize(input());
    expect(s).toMatchObject({
      jobs: 5,
      routable: 4,
      completed: 4,
      failed: 0,
      cancelled: 1,
      unroutable: 1,
      githubApiCalls: 9,
      apiCallsPerJob: 1.8,
      durationMs: 12_346,
      ok: true,
      queueTimeMs: { p50: 400, p95: 1000, max: 1000 },
    });
    expect(s.scaleSets.map((x) => [x.name, x.jobs, x.peakRunners])).toEqual([
      ['linux-process', 1, 0],
      ['linux-cloud', 2, 2],
    ]);
    const text = formatSummary(s);
    expect(text).toContain('OK: every routable job completed and nothing leaked.');
    expect(text).toContain('p50 400ms, p95 1.00s, max 1.00s');
  });

  it('is not ok on an incomplete job, a failure, a leak, or an unroutable job the controller did not report', () => {
    const records = input().records.map((r) => (r.id === 2 ? { ...r, status: 'in_progress' } : r));
    expect(summarize(input({ records })).problems).toEqual(['1 routable job(s) did not complete']);
    const failed = input().records.map((r) => (r.id === 3 ? { ...r, conclusion: 'failure' } : r));
    expect(summarize(input({ records: failed })).problems).toEqual(['1 job(s) failed']);
    expect(summarize(input({ leakedRunners: 2, leakedInstances: 1 })).problems).toEqual([
      '2 runner registration(s) leaked',
      '1 instance(s) leaked',
    ]);
    const limited = formatSummary(summarize(input({ githubRateLimitedCalls: 12 })));
    expect(limited).toContain("12 refused by GitHub's rate limits");
    expect(formatSummary(summarize(input()))).not.toContain('refused');
    const hidden = summarize(input({ reportedUnroutable: [] }));
    expect(hidden.ok).toBe(false);
    expect(formatSummary(hidden)).toContain('NOT OK');
  });

  it('with EC2: reports the endpoint, the AWS calls, and fails on an instance or runner parameter left', () => {
    const census = {
      endpoint: 'http://127.0.0.1:5000',
      region: 'eu-west-1',
      launched: 3,
      liveInstances: [] as string[],
      parameters: [] as string[],
    };
    const clean = summarize(input({ ec2: { census, awsCalls: { RunInstances: 3, PutParameter: 3 } } }));
    expect(clean.ok).toBe(true);
    expect(clean.ec2).toEqual({
      endpoint: 'http://127.0.0.1:5000',
      region: 'eu-west-1',
      instancesLaunched: 3,
      instancesLeft: 0,
      parametersLeft: 0,
      awsCalls: { RunInstances: 3, PutParameter: 3 },
    });
    const text = formatSummary(clean);
    expect(text).toContain(
      '3 instances launched at http://127.0.0.1:5000 (eu-west-1); at the end 0 pending or running',
    );
    expect(text).toContain('AWS calls          PutParameter 3, RunInstances 3');
    const left = summarize(
      input({
        ec2: {
          census: { ...census, liveInstances: ['i-0abc'], parameters: ['/runner-fleet/demo/i-0abc'] },
          awsCalls: {},
        },
      }),
    );
    expect(left.ok).toBe(false);
    expect(left.problems).toEqual([
      '1 EC2 instance(s) of the fleet still pending or running at http://127.0.0.1:5000: i-0abc',
      '1 runner parameter(s) left in SSM at http://127.0.0.1:5000: /runner-fleet/demo/i-0abc',
    ]);
    expect(summarize(input()).ec2).toBeUndefined();
  });
});
