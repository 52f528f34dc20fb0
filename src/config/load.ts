/**
 * Loading fleet.yaml: YAML (with node positions) -> secret references resolved -> zod schema -> cross-field rules
 * -> one deep-frozen FleetConfig, or every problem found, each with its line and column.
 */
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import type { z } from 'zod';
import { MAX_YAML_DEPTH, tooDeepAt } from './depth.js';
import { MAX_CONFIG_FILE_BYTES, MAX_SECRET_FILE_BYTES, formatBytes, readBoundedUtf8 } from './read-file.js';
import { positionOf } from './locate.js';
import { errorMap, knownKeysAt, unknownKeyMessage } from './messages.js';
import type { PathIssue, Problem } from './problem.js';
import { formatPath } from './problem.js';
import { checkRules } from './rules.js';
import { fleetConfigSchema } from './schema.js';
import { resolveSecrets } from './secrets.js';
import type { FleetConfig } from '../core/fleet-config.js';

export interface LoadOptions {
  /** Environment for `${env:NAME}` references (the CLI passes process.env). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads a UTF-8 file: the config itself (loadConfig) and `${file:PATH}` references. Default: node:fs. */
  readonly readFile?: (path: string) => string;
}

/**
 * A webhook secret shorter than this is accepted but warned about: it is the HMAC key that proves a webhook came
 * from GitHub, and a short one can be guessed (and is scrubbed from logs only as a whole word or value).
 */
export const MIN_WEBHOOK_SECRET_LENGTH = 16;

export type LoadResult =
  | {
      readonly ok: true;
      readonly config: FleetConfig;
      /** Problems that do not stop the config from loading; `validate` prints them. */
      readonly warnings: readonly Problem[];
    }
  | { readonly ok: false; readonly problems: readonly Problem[] };

/** Prefix of top-level keys that hold anchors and are otherwise ignored. */
export const EXTENSION_PREFIX = 'x-';

const readSecretFile = (path: string) => readBoundedUtf8(path, MAX_SECRET_FILE_BYTES);
const readConfigFile = (path: string) => readBoundedUtf8(path, MAX_CONFIG_FILE_BYTES);

/** Secrets shorter than this are not scrubbed from messages: replacing "a" or "80" would garble them. */
const MIN_SCRUB_LENGTH = 4;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

const startsWith = (path: readonly PropertyKey[], prefix: readonly PropertyKey[]) =>
  prefix.length <= path.length && prefix.every((segment, index) => path[index] === segment);

/**
 * zod issues as PathIssues; an unknown-keys issue becomes one issue per key, located at the key. A custom issue
 * with `params: { target: 'key' }` is also located at its key.
 */
function schemaIssues(issues: readonly z.core.$ZodIssue[], raw: unknown): PathIssue[] {
  return issues.flatMap((issue): PathIssue[] => {
    const path = issue.path as PropertyKey[];
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(path, raw);
      return issue.keys.map((key) => ({
        path: [...path, key],
        message: unknownKeyMessage(key, known),
        target: 'key',
      }));
    }
    if (issue.code === 'invalid_key') {
      // A map key failed its format: say why (the inner issue) and point at the key.
      return [{ path, message: issue.issues[0]?.message ?? issue.message, target: 'key' }];
    }
    const target = issue.code === 'custom' && issue.params?.target === 'key' ? 'key' : undefined;
    return [{ path, message: issue.message, ...(target ? { target } : {}) }];
  });
}

/**
 * Top-level `x-*` keys are ignored (as in Compose files) so they can hold YAML anchors for `<<: *name` merges;
 * dropped before secrets are resolved, so a reference inside one is never evaluated on its own.
 */
function withoutExtensions(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  return Object.fromEntries(Object.entries(raw).filter(([key]) => !key.startsWith(EXTENSION_PREFIX)));
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/;

/** The PEM text of a CA bundle, or why it cannot be used (the path and a reason, never the content). */
function readCaFile(file: string, readFile: (path: string) => string): string | Error {
  let text: string;
  try {
    text = readFile(file);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : String(code ?? 'unreadable');
    return new Error(`cannot read ${file}: ${reason}`);
  }
  if (!PEM_CERTIFICATE.test(text)) {
    return new Error(`${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  return text;
}

/** Validates fleet.yaml text. `fileName` names the file in problems; relative `${file:...}` start from its directory. */
export function parseConfig(text: string, fileName: string, options: LoadOptions): LoadResult {
  const lineCounter = new LineCounter();
  const problem = (offset: number, path: string, message: string): Problem => ({
    file: fileName,
    ...lineCounter.linePos(offset),
    path,
    message,
  });
  const deep = tooDeepAt(text);
  if (deep !== null) {
    // Only the line counter's pass over the text: nothing recursive has walked it.
    lineCounter.addNewLine(0);
    for (const match of text.matchAll(/\n/g)) lineCounter.addNewLine(match.index + 1);
    return {
      ok: false,
      problems: [problem(deep, '', `nested deeper than ${MAX_YAML_DEPTH} levels of mappings and sequences`)],
    };
  }
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true }) as Document;

  const syntax = [...doc.errors, ...doc.warnings];
  if (syntax.length > 0)
    return { ok: false, problems: syntax.map((error) => problem(error.pos[0], '', error.message)) };
  if (doc.contents === null) {
    return {
      ok: false,
      problems: [problem(0, '', 'the file is empty; expected a mapping with github, webhook and scaleSets')],
    };
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    return { ok: false, problems: [problem(0, '', (error as Error).message)] };
  }

  const secrets = resolveSecrets(withoutExtensions(raw), {
    env: options.env,
    readFile: options.readFile ?? readSecretFile,
    baseDir: dirname(fileName),
  });
  const parsed = fleetConfigSchema.safeParse(secrets.value, { error: errorMap });
  // A value whose reference failed is incomplete; schema complaints about it would only repeat the problem.
  const failed = secrets.issues.map((issue) => issue.path);
  const issues = [
    ...secrets.issues,
    ...schemaIssues(parsed.error?.issues ?? [], secrets.value).filter(
      (issue) => !failed.some((path) => startsWith(issue.path, path)),
    ),
    ...checkRules(secrets.value),
  ];

  // github.caFile is read here, so a missing or non-PEM file is a problem with its position, not a failure later.
  let ca: { file: string; pem: string } | undefined;
  if (issues.length === 0 && parsed.success && parsed.data.github.caFile !== undefined) {
    const file = resolve(dirname(fileName), parsed.data.github.caFile);
    const read = readCaFile(file, options.readFile ?? readSecretFile);
    if (typeof read === 'string') ca = { file, pem: read };
    else issues.push({ path: ['github', 'caFile'], message: read.message });
  }

  if (issues.length === 0 && parsed.success) {
    const warnings: Problem[] = [];
    const configured = parsed.data.webhook.secret;
    const list = typeof configured === 'string' ? [configured] : configured;
    list.forEach((secret, index) => {
      if (secret.length >= MIN_WEBHOOK_SECRET_LENGTH) return;
      const at = typeof configured === 'string' ? ['webhook', 'secret'] : ['webhook', 'secret', index];
      const { line, col } = positionOf(doc, lineCounter, at);
      warnings.push({
        file: fileName,
        line,
        col,
        path: formatPath(at),
        message:
          `is ${secret.length} characters long; use at least ${MIN_WEBHOOK_SECRET_LENGTH} random characters ` +
          '(e.g. openssl rand -hex 32)',
      });
    });
    const config = ca
      ? { ...parsed.data, github: { ...parsed.data.github, caFile: ca.file, ca: ca.pem } }
      : parsed.data;
    return { ok: true, config: deepFreeze(config), warnings };
  }

  const scrub = secrets.secrets
    .filter((secret) => secret.length >= MIN_SCRUB_LENGTH)
    .sort((a, b) => b.length - a.length);
  const seen = new Set<string>();
  const problems = issues
    .map((issue) => {
      let message = issue.message;
      for (const secret of scrub) message = message.split(secret).join('[secret]');
      const { line, col } = positionOf(doc, lineCounter, issue.path, issue.target);
      return { file: fileName, line, col, path: formatPath(issue.path), message };
    })
    .filter((item) => {
      const key = `${item.line}:${item.col}:${item.path}:${item.message}`;
      return seen.has(key) ? false : (seen.add(key), true);
    })
    .sort((a, b) => a.line - b.line || a.col - b.col);
  return { ok: false, problems };
}

/** Reads and validates a fleet.yaml file. An unreadable file is one problem at line 0. */
export function loadConfig(path: string, options: LoadOptions): LoadResult {
  const readFile = options.readFile ?? readConfigFile;
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'ENOTREG'
            ? 'not a regular file'
            : code === 'EFBIG'
              ? `larger than ${formatBytes(MAX_CONFIG_FILE_BYTES)}`
              : String(code ?? error);
    return {
      ok: false,
      problems: [
        { file: path, line: 0, col: 0, path: '', message: `cannot read the config file: ${reason}` },
      ],
    };
  }
  return parseConfig(text, path, options);
}
