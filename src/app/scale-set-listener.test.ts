/** How message items become the job events the store records (the rest of the listener runs against the simulator
 *  in test/github/scale-set-mode.test.ts and test/e2e/scale-set.test.ts). */
import { describe, expect, it } from 'vitest';
import type { JobMessage } from '../github/actions-service.js';
import { eventOfItem } from './scale-set-listener.js';

const base: JobMessage = {
  messageType: 'JobAssigned',
  runnerRequestId: 7_000_123,
  repositoryName: 'app',
  ownerName: 'octo-org',
  jobId: 'a4f2c1de-0000-4000-8000-000000000001',
  workflowRunId: 10_000_000_042,
  requestLabels: ['linux', 'queue'],
  queueTime: '2026-01-02T03:04:05.000Z',
  runnerAssignTime: '0001-01-01T00:00:00Z',
  finishTime: '0001-01-01T00:00:00Z',
};

describe('eventOfItem', () => {
  it('maps JobAvailable and JobAssigned to queued, keyed by the runner request id', () => {
    for (const messageType of ['JobAvailable', 'JobAssigned']) {
      const e = eventOfItem({ ...base, messageType }, 'scale-set/1/5/0')!;
      expect(e).toMatchObject({
        deliveryId: 'scale-set/1/5/0',
        action: 'queued',
        installationId: null,
        job: {
          id: 7_000_123,
          runId: 10_000_000_042,
          owner: 'octo-org',
          repo: 'app',
          labels: ['linux', 'queue'],
          status: 'queued',
          conclusion: null,
          runnerName: null,
          createdAt: Date.parse('2026-01-02T03:04:05.000Z'),
          startedAt: null,
          completedAt: null,
        },
      });
    }
  });

  it('maps JobStarted to in_progress with its runner, and the zero time to null', () => {
    const e = eventOfItem(
      { ...base, messageType: 'JobStarted', runnerId: 12, runnerName: 'queue-abcd1234' },
      'd',
    )!;
    expect(e.action).toBe('in_progress');
    expect(e.job).toMatchObject({ runnerId: 12, runnerName: 'queue-abcd1234', startedAt: null });
  });

  it("maps JobCompleted's result to the webhook conclusions", () => {
    const results: Record<string, string> = {
      succeeded: 'success',
      failed: 'failure',
      canceled: 'cancelled',
      skipped: 'skipped',
    };
    for (const [result, conclusion] of Object.entries(results)) {
      const e = eventOfItem(
        { ...base, messageType: 'JobCompleted', result, finishTime: '2026-01-02T03:05:00Z' },
        'd',
      )!;
      expect(e.action).toBe('completed');
      expect(e.job.conclusion).toBe(conclusion);
      expect(e.job.completedAt).toBe(Date.parse('2026-01-02T03:05:00Z'));
    }
  });

  it('ignores unknown item types and items without a runner request id', () => {
    expect(eventOfItem({ ...base, messageType: 'JobSomethingNew' }, 'd')).toBeNull();
    expect(eventOfItem({ ...base, runnerRequestId: 0 }, 'd')).toBeNull();
  });
});
