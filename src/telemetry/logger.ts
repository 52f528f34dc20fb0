/**
 * pino JSON logger with secrets removed at two levels: every call's fields go through `toLoggable` (total: it never
 * throws; any property whose name marks a secret is redacted at any depth; Buffers are summarized, never read), and
 * a last-resort scrub of secret-looking values (GitHub tokens, JWTs, PEM keys, long base64 blobs, and the
 * configured secret values) runs over the string literals of the final line, message included.
 */
import { pino } from 'pino';
import type { DestinationStream, Level, Logger as PinoLogger } from 'pino';
import { toLoggable } from './loggable.js';
import { createLineScrubber, createScrubber, redactJsonSecretProperties } from './redact.js';

export type Logger = PinoLogger;
export type LogLevel = Level | 'silent';

export interface CreateLoggerOptions {
  readonly level?: LogLevel;
  /** Where lines go; stdout by default. Tests pass a stream that collects lines. */
  readonly destination?: DestinationStream | NodeJS.WritableStream;
  /** Exact secret values (webhook secret, PAT, dashboard token, private key) scrubbed wherever they appear. */
  readonly knownSecrets?: readonly string[];
  /** Fields on every line, e.g. `{ fleet: 'runner-fleet' }`. */
  readonly base?: Record<string, unknown>;
}

/** Fields a log call may not use: pino writes its own `msg`, and a second one makes a line with a duplicate key. */
const MESSAGE_KEY = 'msg';

function isErrorValue(value: object): boolean {
  try {
    return value instanceof Error;
  } catch {
    return false;
  }
}

/**
 * The fields object of one log call, made safe: `toLoggable` (total, secret keys redacted, Buffers summarized)
 * and, when the call also gives a message, a `msg` field renamed to `reason` (or `detail`) so the line has one
 * `msg` key.
 */
function safeArguments(args: unknown[], scrub: (text: string) => string): unknown[] {
  const [first, ...rest] = args;
  if (typeof first !== 'object' || first === null) return args;
  const fields = isErrorValue(first) ? { err: first } : first;
  const clean = toLoggable(fields, { scrub });
  if (typeof clean !== 'object' || clean === null || Array.isArray(clean)) return [{ value: clean }, ...rest];
  const record = clean as Record<string, unknown>;
  return [rest.length > 0 ? withoutMessageKey(record) : record, ...rest];
}

/** A `msg` field renamed to `reason` (or `detail` when there is a reason already), so pino's `msg` is the only one. */
function withoutMessageKey(record: Record<string, unknown>): Record<string, unknown> {
  if (!Object.hasOwn(record, MESSAGE_KEY)) return record;
  const renamed = Object.hasOwn(record, 'reason') ? 'detail' : 'reason';
  record[renamed] = record[MESSAGE_KEY];
  delete record[MESSAGE_KEY];
  return record;
}

export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const secrets = options.knownSecrets ?? [];
  const scrub = createScrubber(secrets);
  const scrubLine = createLineScrubber(secrets);
  // pino's own stdout destination (synchronous sonic-boom) unless a stream is given.
  const destination = (options.destination ?? pino.destination(1)) as DestinationStream;
  const logger = pino(
    {
      level: options.level ?? 'info',
      base: options.base ? (toLoggable(options.base, { scrub }) as Record<string, unknown>) : null,
      timestamp: pino.stdTimeFunctions.isoTime,
      // Errors are already plain data (toLoggable): pino's own error serializer would rename their type.
      serializers: { err: (value: unknown) => value },
      formatters: {
        // The root's bindings go through the same walk as the fields of a call (children's: see below).
        bindings: (bindings) => withoutMessageKey(toLoggable(bindings, { scrub }) as Record<string, unknown>),
      },
      hooks: {
        // Every call's fields are made safe before pino serializes them: nothing pino walks can throw.
        logMethod(args, method) {
          method.apply(this, safeArguments(args, scrub) as Parameters<typeof method>);
        },
        // The serialized line, message and error stacks included: nothing reaches the destination unscrubbed.
        streamWrite: (line) => scrubLine(redactJsonSecretProperties(line)),
      },
    },
    destination,
  );
  // pino applies `formatters.bindings` to the root's bindings only (children reset it), so children's bindings are
  // made safe here: the same walk as a call's fields, and no `msg` (pino writes bindings before the call's message,
  // so a bound `msg` would make a line with two). Children inherit this method from the root.
  const child = logger.child;
  logger.child = function safeChild(this: Logger, bindings, options) {
    const safe = withoutMessageKey({ ...(toLoggable(bindings, { scrub }) as Record<string, unknown>) });
    return child.call(this, safe, options);
  } as Logger['child'];
  return logger;
}

/** Child logger carrying the identifiers every reconcile log line should have. */
export function childLogger(
  logger: Logger,
  fields: { readonly scaleSet?: string; readonly runner?: string; readonly jobId?: number },
): Logger {
  const bindings: Record<string, string | number> = {};
  if (fields.scaleSet !== undefined) bindings.scaleSet = fields.scaleSet;
  if (fields.runner !== undefined) bindings.runner = fields.runner;
  if (fields.jobId !== undefined) bindings.jobId = fields.jobId;
  return logger.child(bindings);
}

/** Every secret value in a parsed configuration: pass them as `knownSecrets` when building the logger. */
export function configSecrets(config: {
  readonly github?: {
    readonly auth: { readonly token: string } | { readonly app: { readonly privateKey: string } };
  };
  readonly webhook?: { readonly secret: string | readonly string[] };
  readonly server?: { readonly dashboardToken?: string };
}): string[] {
  const secrets: string[] = [];
  const auth = config.github?.auth;
  if (auth && 'token' in auth) secrets.push(auth.token);
  if (auth && 'app' in auth) secrets.push(auth.app.privateKey);
  const webhook = config.webhook?.secret;
  for (const secret of typeof webhook === 'string' ? [webhook] : (webhook ?? []))
    if (secret) secrets.push(secret);
  if (config.server?.dashboardToken) secrets.push(config.server.dashboardToken);
  return secrets;
}
