/**
 * pino JSON logger with secrets removed at three levels: declared redaction paths (fast, for the common shapes),
 * any property whose name marks a secret at any depth, and a last-resort scrub of secret-looking values (GitHub
 * tokens, JWTs, PEM keys, long base64 blobs, and the configured secret values) in the final line, message included.
 */
import { pino } from 'pino';
import type { DestinationStream, Level, Logger as PinoLogger } from 'pino';
import { REDACTED, SECRET_KEYS, createScrubber, redactJsonSecretProperties } from './redact.js';

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

/** Redaction paths for pino: each secret key at the top level and up to three levels down. */
export function redactionPaths(): string[] {
  const paths: string[] = [];
  for (const key of SECRET_KEYS) {
    const plain = /^[A-Za-z_$][\w$]*$/.test(key);
    for (const prefix of ['', '*', '*.*', '*.*.*']) {
      if (plain) paths.push(prefix ? `${prefix}.${key}` : key);
      else paths.push(`${prefix}["${key}"]`);
    }
  }
  return paths;
}

export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const scrub = createScrubber(options.knownSecrets ?? []);
  // pino's own stdout destination (synchronous sonic-boom) unless a stream is given.
  const destination = (options.destination ?? pino.destination(1)) as DestinationStream;
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? null,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactionPaths(), censor: REDACTED },
      hooks: {
        // The serialized line, message and error stacks included: nothing reaches the destination unscrubbed.
        streamWrite: (line) => scrub(redactJsonSecretProperties(line)),
      },
    },
    destination,
  );
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
  readonly webhook?: { readonly secret: string };
  readonly server?: { readonly dashboardToken?: string };
}): string[] {
  const secrets: string[] = [];
  const auth = config.github?.auth;
  if (auth && 'token' in auth) secrets.push(auth.token);
  if (auth && 'app' in auth) secrets.push(auth.app.privateKey);
  if (config.webhook?.secret) secrets.push(config.webhook.secret);
  if (config.server?.dashboardToken) secrets.push(config.server.dashboardToken);
  return secrets;
}
