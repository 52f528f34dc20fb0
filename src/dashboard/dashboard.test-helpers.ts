/** Test helpers of the dashboard: a mutable in-memory read model and a Server-Sent Events reader over real HTTP. */
import type { RunnerState } from '../core/types.js';
import { RUNNER_STATES } from '../core/types.js';
import type { EventView, JobView, ReadModel, RunnerView, ScaleSetView } from '../server/read-model.js';

export const LEAKED_TOKEN = 'ghs_16C7e42F292c6912E7710c838347Ae178B4a';
export const LEAKED_JIT = 'eyJTRUNSRVQiOiJqaXQiLCJtb3JlIjoiYmFzZTY0IGNvbnRlbnRzIG9mIHRoZSBjcmVkZW50aWFscyJ9';

function counts(partial: Partial<Record<RunnerState, number>>): Record<RunnerState, number> {
  const out = {} as Record<RunnerState, number>;
  for (const s of RUNNER_STATES) out[s] = partial[s] ?? 0;
  return out;
}

export interface MemoryModel extends ReadModel {
  sets: (ScaleSetView & Record<string, unknown>)[];
  jobList: (JobView & Record<string, unknown>)[];
  runnerList: (RunnerView & Record<string, unknown>)[];
  eventList: EventView[];
}

/** A read model whose records carry secrets in fields no view declares, and one in a failure reason. */
export function memoryReadModel(now: number): MemoryModel {
  const model: MemoryModel = {
    sets: [
      {
        name: 'linux-small',
        scope: { org: 'octo-org' },
        runnerGroup: 'Default',
        labels: ['linux', 'x64'],
        minIdle: 1,
        max: 8,
        ephemeral: true,
        registration: 'jit',
        priority: 0,
        provider: 'process',
        runners: counts({ idle: 1, busy: 2 }),
        activeRunners: 3,
        queuedJobs: 1,
        inProgressJobs: 2,
        oldestQueuedMs: 1500,
        backoff: {
          failures: 1,
          until: null,
          lastFailure: `provider create failed: token ${LEAKED_TOKEN} rejected`,
          lastFailureAt: now - 1000,
        },
        githubListedAt: now,
        instancesListedAt: now,
        lastReconcileAt: now,
        pacing: { waiting: 3, oldestWaitMs: 2500, pausedUntil: null, perMinute: 180 },
        registrationToken: 'AABF3JGZDX3P5PMEXLND6TS6FCWO6',
      },
    ],
    jobList: [
      {
        id: 101,
        runId: 5,
        owner: 'octo-org',
        repo: 'app',
        labels: ['self-hosted', 'linux'],
        status: 'queued',
        conclusion: null,
        scaleSet: 'linux-small',
        unroutable: false,
        runnerName: null,
        queuedAt: now - 1500,
        startedAt: null,
        completedAt: null,
        waitMs: 1500,
        token: LEAKED_TOKEN,
      },
      {
        id: 102,
        runId: 5,
        owner: 'octo-org',
        repo: 'app',
        labels: ['self-hosted', 'gpu'],
        status: 'queued',
        conclusion: null,
        scaleSet: null,
        unroutable: true,
        runnerName: null,
        queuedAt: now - 9000,
        startedAt: null,
        completedAt: null,
        waitMs: 9000,
      },
    ],
    runnerList: [
      {
        name: 'linux-small-ab12',
        scaleSet: 'linux-small',
        state: 'busy',
        reason: null,
        githubId: 7,
        createdAt: now - 5000,
        ageMs: 5000,
        stateChangedAt: now - 2000,
        stateAgeMs: 2000,
        instance: {
          state: 'running',
          providerId: 'pid-1234',
          jitConfig: LEAKED_JIT,
        } as RunnerView['instance'],
        github: { status: 'online', busy: true },
        job: { id: 99, status: 'in_progress' },
        encodedJitConfig: LEAKED_JIT,
      },
    ],
    eventList: [
      {
        id: 1,
        at: now - 2000,
        kind: 'runner',
        scaleSet: 'linux-small',
        runner: 'linux-small-ab12',
        jobId: null,
        event: 'busy',
        reason: null,
      },
    ],
    scaleSets: () => model.sets,
    jobs: (query) =>
      model.jobList.filter(
        (j) =>
          (query.status === undefined || j.status === query.status) &&
          (query.scaleSet === undefined || j.scaleSet === query.scaleSet) &&
          (j.status !== 'completed' || (query.completedLimit ?? 0) > 0),
      ),
    runners: () => model.runnerList,
    events: (query) => model.eventList.slice(0, query.limit),
  };
  return model;
}

export interface SseEvent {
  readonly event: string;
  readonly data: unknown;
}

/**
 * Reads Server-Sent Events from `url` until `until` returns true for the events so far (or the timeout passes),
 * then closes the connection. Resolves to every event read and the raw text.
 */
export async function readSse(
  url: string,
  options: {
    headers?: Record<string, string>;
    until: (events: readonly SseEvent[]) => boolean;
    timeoutMs?: number;
    /** Stops reading (resolving with what was read). */
    signal?: AbortSignal;
  },
): Promise<{ events: SseEvent[]; raw: string; status: number }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs ?? 10_000);
  options.signal?.addEventListener('abort', () => abort.abort(), { once: true });
  const events: SseEvent[] = [];
  let raw = '';
  let status = 0;
  try {
    const response = await fetch(url, { headers: options.headers ?? {}, signal: abort.signal });
    status = response.status;
    if (!response.ok || !response.body) return { events, raw: await response.text(), status };
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      const text = decoder.decode(chunk, { stream: true });
      raw += text;
      buffer += text;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length > 0) events.push({ event, data: JSON.parse(data.join('\n')) as unknown });
      }
      if (options.until(events)) break;
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return { events, raw, status };
}
