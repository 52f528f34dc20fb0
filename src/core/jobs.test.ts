import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { WorkflowJobEvent } from './ports.js';
import type { JobRecord } from './records.js';
import { applyJobEvent, applyJobStatus, markJobChecked } from './jobs.js';

const NOW = 1_000_000;
const route = () => 'linux';

function event(
  action: WorkflowJobEvent['action'],
  extra: Partial<WorkflowJobEvent['job']> = {},
): WorkflowJobEvent {
  return {
    deliveryId: `d-${action}`,
    action,
    installationId: 1,
    job: {
      id: 7,
      runId: 70,
      owner: 'octo-org',
      repo: 'app',
      labels: ['linux'],
      status: action,
      conclusion: action === 'completed' ? 'success' : null,
      runnerId: action === 'queued' ? null : 3,
      runnerName: action === 'queued' ? null : 'linux-abc',
      createdAt: 500,
      startedAt: 500,
      completedAt: action === 'completed' ? 900 : null,
      ...extra,
    },
  };
}

describe('job rules', () => {
  it('creates a routed record from the first event; queued carries no start time', () => {
    const job = applyJobEvent(null, event('queued'), route, NOW)!;
    expect(job).toMatchObject({ id: 7, status: 'queued', scaleSet: 'linux', queuedAt: 500, startedAt: null });
  });

  it('ignores `waiting` and repeats', () => {
    expect(applyJobEvent(null, event('waiting'), route, NOW)).toBeNull();
    const queued = applyJobEvent(null, event('queued'), route, NOW)!;
    expect(applyJobEvent(queued, event('queued'), route, NOW)).toBeNull();
  });

  it('ends in the same state whatever order the events arrive in', () => {
    const actions = ['queued', 'in_progress', 'completed'] as const;
    fc.assert(
      fc.property(fc.shuffledSubarray([...actions], { minLength: 3, maxLength: 3 }), (order) => {
        let job: JobRecord | null = null;
        for (const a of order) job = applyJobEvent(job, event(a), route, NOW) ?? job;
        expect(job).toMatchObject({ status: 'completed', conclusion: 'success', runnerName: 'linux-abc' });
        expect(job!.completedAt).toBe(900);
      }),
    );
  });

  it('a status check merges forward, completes a job GitHub forgot, and stamps the check', () => {
    const queued = applyJobEvent(null, event('queued'), route, NOW)!;
    const started = applyJobStatus(
      queued,
      { id: 7, status: 'in_progress', conclusion: null, runnerName: 'r', labels: [] },
      NOW,
    );
    expect(started).toMatchObject({ status: 'in_progress', startedAt: NOW, checkedAt: NOW });
    expect(applyJobStatus(started, null, NOW + 1)).toMatchObject({
      status: 'completed',
      conclusion: 'not_found',
      checkedAt: NOW + 1,
    });
    // A check never moves a job backwards.
    const back = applyJobStatus(
      started,
      { id: 7, status: 'queued', conclusion: null, runnerName: null, labels: [] },
      NOW + 2,
    );
    expect(back.status).toBe('in_progress');
  });

  it('a failed check still counts as a check', () => {
    const queued = applyJobEvent(null, event('queued'), route, NOW)!;
    expect(markJobChecked(queued, NOW + 5).checkedAt).toBe(NOW + 5);
  });
});
