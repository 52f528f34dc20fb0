/**
 * Checks of GitHub's response bodies before they become domain values: a body of the wrong shape is a
 * `bad_response` error naming the field, never a silently wrong runner or job.
 */
import type { JobStatus, GitHubRunner } from '../core/types.js';
import type { JobInfo } from '../core/ports.js';
import type { WebhookDelivery } from './client.js';
import { GitHubError } from './errors.js';

type Json = Record<string, unknown>;

function fail(route: string, field: string, expected: string): never {
  throw new GitHubError(`GitHub ${route}: response field ${field} is not ${expected}`, {
    code: 'bad-response',
    route,
  });
}

export function asObject(value: unknown, route: string, field: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(route, field, 'an object');
  return value as Json;
}

export function asString(value: unknown, route: string, field: string): string {
  if (typeof value !== 'string') fail(route, field, 'a string');
  return value;
}

export function asInteger(value: unknown, route: string, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(route, field, 'an integer');
  return value;
}

export function asArray(value: unknown, route: string, field: string): unknown[] {
  if (!Array.isArray(value)) fail(route, field, 'an array');
  return value;
}

function labelNames(value: unknown, route: string, field: string): string[] {
  return asArray(value, route, field).map((l, i) =>
    typeof l === 'string'
      ? l
      : asString(asObject(l, route, `${field}[${i}]`).name, route, `${field}[${i}].name`),
  );
}

export function toRunner(value: unknown, route: string, field = 'runner'): GitHubRunner {
  const r = asObject(value, route, field);
  const status = asString(r.status, route, `${field}.status`);
  if (typeof r.busy !== 'boolean') fail(route, `${field}.busy`, 'a boolean');
  return {
    id: asInteger(r.id, route, `${field}.id`),
    name: asString(r.name, route, `${field}.name`),
    ...(typeof r.os === 'string' ? { os: r.os } : {}),
    status: status === 'online' ? 'online' : 'offline',
    busy: r.busy,
    labels: labelNames(r.labels ?? [], route, `${field}.labels`),
    ...(typeof r.ephemeral === 'boolean' ? { ephemeral: r.ephemeral } : {}),
  };
}

/** GitHub's job statuses beyond the three the controller distinguishes all mean "not started yet". */
function jobStatus(status: string): JobStatus {
  if (status === 'in_progress' || status === 'completed') return status;
  return 'queued';
}

export function toJobInfo(value: unknown, route: string): JobInfo {
  const j = asObject(value, route, 'job');
  const conclusion = j.conclusion;
  const runnerName = j.runner_name;
  return {
    id: asInteger(j.id, route, 'job.id'),
    status: jobStatus(asString(j.status, route, 'job.status')),
    conclusion:
      conclusion === null || conclusion === undefined ? null : asString(conclusion, route, 'job.conclusion'),
    runnerName:
      runnerName === null || runnerName === undefined ? null : asString(runnerName, route, 'job.runner_name'),
    labels: labelNames(j.labels ?? [], route, 'job.labels'),
  };
}

/** One item of `GET /app/hook/deliveries`. */
export function toDelivery(value: unknown, route: string, field = 'body'): WebhookDelivery {
  const o = asObject(value, route, field);
  const deliveredAt = Date.parse(asString(o.delivered_at, route, `${field}.delivered_at`));
  if (!Number.isFinite(deliveredAt)) fail(route, `${field}.delivered_at`, 'a date');
  return {
    id: asInteger(o.id, route, `${field}.id`),
    guid: asString(o.guid, route, `${field}.guid`),
    deliveredAt,
    redelivery: o.redelivery === true,
    statusCode: typeof o.status_code === 'number' ? o.status_code : 0,
    event: asString(o.event, route, `${field}.event`),
    action: typeof o.action === 'string' ? o.action : null,
  };
}
