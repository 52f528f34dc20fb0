import perfHooks from 'node:perf_hooks';
import { describe, expect, it, vi } from 'vitest';
import { EVENT_LOOP_RESOLUTION_MS, METRIC_DEFINITIONS, createMetrics } from './metrics.js';

describe('createMetrics', () => {
  it('registers every declared metric, with its type and labels, in a private registry', async () => {
    const m = createMetrics();
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name).sort();
    expect(names).toEqual(
      Object.values(METRIC_DEFINITIONS)
        .map((d) => d.name)
        .sort(),
    );
    for (const def of Object.values(METRIC_DEFINITIONS)) {
      const metric = m.registry.getSingleMetric(def.name);
      expect(metric, def.name).toBeDefined();
    }
    m.jobs.inc({ scale_set: 'linux', event: 'queued' });
    m.githubApiCalls.inc({ route: 'POST /orgs/{org}/actions/runners/generate-jitconfig', status: '201' });
    m.githubRateLimitRemaining.set(4999);
    m.jobQueueSeconds.observe({ scale_set: 'linux' }, 1.5);
    const text = await m.registry.metrics();
    expect(text).toContain('runner_fleet_jobs_total{scale_set="linux",event="queued"} 1');
    expect(text).toContain('runner_fleet_github_rate_limit_remaining 4999');
    expect(text).toContain('runner_fleet_job_queue_seconds_bucket{le="2",scale_set="linux"} 1');
    expect(text).toContain('# TYPE runner_fleet_runners gauge');
  });

  it('two instances do not share state (no global registry)', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.unroutableJobs.inc(3);
    expect((await b.unroutableJobs.get()).values[0]?.value ?? 0).toBe(0);
    expect((await a.unroutableJobs.get()).values[0]?.value).toBe(3);
  });

  it('rejects labels that are not declared', () => {
    const m = createMetrics();
    expect(() => m.webhooks.inc({ event: 'ping', result: 'ok', extra: 'x' } as never)).toThrow();
  });

  it('can add process metrics to the same registry', async () => {
    const m = createMetrics({ processMetrics: true });
    expect(await m.registry.metrics()).toContain('runner_fleet_process_cpu_seconds_total');
  });

  it('samples the event loop lag every 100 ms, not every 10 ms as prom-client would (100 wake-ups a second at rest)', async () => {
    const monitor = vi.spyOn(perfHooks, 'monitorEventLoopDelay');
    try {
      const m = createMetrics({ processMetrics: true });
      expect(monitor).toHaveBeenCalledWith({ resolution: EVENT_LOOP_RESOLUTION_MS });
      expect(EVENT_LOOP_RESOLUTION_MS).toBeGreaterThanOrEqual(100);
      await new Promise((r) => setTimeout(r, 250));
      expect(await m.registry.metrics()).toContain('runner_fleet_nodejs_eventloop_lag_p99_seconds');
    } finally {
      monitor.mockRestore();
    }
  });
});
