/**
 * Webhook verification and parsing. The signature is checked over the raw body exactly as received, in constant
 * time (@octokit/webhooks-methods), before anything else is read from it; a `workflow_job` payload is then checked
 * field by field, so an unexpected shape is rejected with the name of the field instead of becoming a bad job.
 */
import { sign, verify } from '@octokit/webhooks-methods';
import type { WorkflowJobEvent } from '../core/ports.js';

export type WebhookErrorCode = 'invalid_body' | 'invalid_json' | 'invalid_payload';

export class WebhookError extends Error {
  override readonly name = 'WebhookError';
  readonly code: WebhookErrorCode;
  /** Dotted path of the offending field, for `invalid_payload`. */
  readonly field: string | null;

  constructor(
    code: WebhookErrorCode,
    message: string,
    field: string | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.field = field;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body as text, or null when it is not valid UTF-8 (GitHub always sends UTF-8 JSON). */
export function decodeBody(raw: Uint8Array | string): string | null {
  if (typeof raw === 'string') return raw;
  try {
    return utf8.decode(raw);
  } catch {
    return null;
  }
}

/**
 * True when `signature` (the `X-Hub-Signature-256` header, `sha256=<hex>`) is the HMAC of the raw body under
 * `secret`, or under any of them when given a list. Never throws: a missing header, an empty body or a body that is not UTF-8 are simply not verified.
 */
export async function verifyWebhookSignature(
  secret: string | readonly string[],
  rawBody: Uint8Array | string,
  signature: string | undefined | null,
): Promise<boolean> {
  if (!signature || typeof signature !== 'string' || !signature.startsWith('sha256=')) return false;
  const body = decodeBody(rawBody);
  if (!body) return false;
  // During a rotation several secrets are valid: each is tried in full (every comparison is constant-time).
  for (const candidate of webhookSecrets(secret)) {
    if (candidate && (await verify(candidate, body, signature))) return true;
  }
  return false;
}

/** `webhook.secret` as a list: one secret, or the several that are valid during a rotation. */
export function webhookSecrets(secret: string | readonly string[]): readonly string[] {
  return typeof secret === 'string' ? [secret] : secret;
}

/** `sha256=<hex>` for a body: what GitHub puts in `X-Hub-Signature-256` (used by the simulator and tests). */
export function signWebhookPayload(secret: string, body: string): Promise<string> {
  return sign(secret, body);
}

/** JSON, or GitHub's form encoding (`payload=<json>`) when the hook was configured with that content type. */
export function parseWebhookBody(body: string, contentType?: string): unknown {
  let json = body;
  if (contentType?.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(body).get('payload');
    if (payload === null)
      throw new WebhookError('invalid_body', 'form-encoded webhook without a payload field');
    json = payload;
  }
  try {
    return JSON.parse(json) as unknown;
  } catch (error) {
    throw new WebhookError('invalid_json', 'webhook body is not valid JSON', null, { cause: error });
  }
}

type Obj = Record<string, unknown>;

function bad(field: string, expected: string): never {
  throw new WebhookError('invalid_payload', `workflow_job payload: ${field} must be ${expected}`, field);
}

function obj(value: unknown, field: string): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(field, 'an object');
  return value as Obj;
}

function str(value: unknown, field: string): string {
  if (typeof value !== 'string') bad(field, 'a string');
  return value;
}

function nonEmpty(value: unknown, field: string): string {
  const s = str(value, field);
  if (s.length === 0) bad(field, 'a non-empty string');
  return s;
}

function id(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
    bad(field, 'a positive integer');
  return value;
}

function optional<T>(value: unknown, field: string, read: (v: unknown, f: string) => T): T | null {
  return value === null || value === undefined ? null : read(value, field);
}

function time(value: unknown, field: string): number {
  const ms = Date.parse(str(value, field));
  if (!Number.isFinite(ms)) bad(field, 'an ISO 8601 date');
  return ms;
}

const ACTIONS: ReadonlySet<string> = new Set(['queued', 'in_progress', 'completed', 'waiting']);

/** Validates a `workflow_job` payload and maps it to the event the store persists. */
export function parseWorkflowJobEvent(payload: unknown, deliveryId: string): WorkflowJobEvent {
  const root = obj(payload, 'payload');
  const action = str(root.action, 'action');
  if (!ACTIONS.has(action)) bad('action', 'one of queued, in_progress, completed, waiting');
  const job = obj(root.workflow_job, 'workflow_job');
  const repository = obj(root.repository, 'repository');
  const owner = obj(repository.owner, 'repository.owner');
  const labels = job.labels;
  if (!Array.isArray(labels)) bad('workflow_job.labels', 'an array of strings');
  const installation = optional(root.installation, 'installation', obj);
  return {
    deliveryId,
    action: action as WorkflowJobEvent['action'],
    installationId: installation ? optional(installation.id, 'installation.id', id) : null,
    job: {
      id: id(job.id, 'workflow_job.id'),
      runId: id(job.run_id, 'workflow_job.run_id'),
      owner: nonEmpty(owner.login, 'repository.owner.login'),
      repo: nonEmpty(repository.name, 'repository.name'),
      labels: labels.map((l, i) => str(l, `workflow_job.labels[${i}]`)),
      status: str(job.status, 'workflow_job.status'),
      conclusion: optional(job.conclusion, 'workflow_job.conclusion', str),
      runnerId: optional(job.runner_id, 'workflow_job.runner_id', id),
      runnerName: optional(job.runner_name, 'workflow_job.runner_name', str),
      createdAt: optional(job.created_at, 'workflow_job.created_at', time),
      startedAt: optional(job.started_at, 'workflow_job.started_at', time),
      completedAt: optional(job.completed_at, 'workflow_job.completed_at', time),
    },
  };
}
