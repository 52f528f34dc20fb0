/**
 * Secret references inside fleet.yaml strings: `${env:NAME}` (an environment variable) and `${file:PATH}` (a
 * file's contents, trailing whitespace removed; a relative PATH is relative to the config file's directory).
 * `$${` stands for a literal `${`. Resolved at load so a missing secret is a config problem, not a runtime one.
 */
import { isAbsolute, resolve } from 'node:path';
import type { PathIssue } from './problem.js';
import { MAX_SECRET_FILE_BYTES, formatBytes } from './read-file.js';

export interface SecretSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Reads a file as UTF-8; throws (with a `code` such as ENOENT, or ENOTREG / EFBIG from read-file.ts) when it
   * cannot. The default (load.ts) reads only regular files of at most MAX_SECRET_FILE_BYTES.
   */
  readonly readFile: (path: string) => string;
  /** Directory that relative `${file:...}` paths start from. */
  readonly baseDir: string;
}

export interface Resolved {
  readonly value: unknown;
  readonly issues: PathIssue[];
  /** Every value that came from a reference, so callers can keep them out of messages. */
  readonly secrets: string[];
}

const REFERENCE = /\$\$\{|\$\{([A-Za-z]+):([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const FILE_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTREG: 'not a regular file',
  EFBIG: `larger than ${formatBytes(MAX_SECRET_FILE_BYTES)}`,
};

/** Returns a copy of `value` with every reference in every string replaced. */
export function resolveSecrets(value: unknown, sources: SecretSources): Resolved {
  const issues: PathIssue[] = [];
  const secrets: string[] = [];
  const files = new Map<string, string | Error>();

  const readFile = (path: string): string | Error => {
    const full = isAbsolute(path) ? path : resolve(sources.baseDir, path);
    if (!files.has(full)) {
      try {
        const content = sources.readFile(full);
        // Also bounds a reader that is not the default one.
        if (content.length > MAX_SECRET_FILE_BYTES)
          throw Object.assign(new Error('too large'), { code: 'EFBIG' });
        files.set(full, content.trimEnd());
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        const reason = typeof code === 'string' ? (FILE_ERRORS[code] ?? code) : 'unreadable';
        // Only the path and an error code: a reader's message could quote the content.
        files.set(full, new Error(`cannot read file ${path}: ${reason}`));
      }
    }
    return files.get(full)!;
  };

  const lookup = (source: string, argument: string, path: readonly PropertyKey[]): string | undefined => {
    if (source === 'env') {
      if (!ENV_NAME.test(argument)) {
        issues.push({ path, message: `\${env:${argument}} is not a valid environment variable name` });
        return undefined;
      }
      const found = sources.env[argument];
      if (found === undefined || found === '') {
        issues.push({
          path,
          message: `environment variable ${argument} is ${found === undefined ? 'not set' : 'empty'}`,
        });
        return undefined;
      }
      return found;
    }
    if (source === 'file') {
      if (argument.trim() === '') {
        issues.push({ path, message: '${file:} needs a path' });
        return undefined;
      }
      const content = readFile(argument);
      if (content instanceof Error) {
        issues.push({ path, message: content.message });
        return undefined;
      }
      return content;
    }
    issues.push({ path, message: `unknown reference \${${source}:...}; use \${env:NAME} or \${file:PATH}` });
    return undefined;
  };

  const walk = (node: unknown, path: readonly PropertyKey[]): unknown => {
    if (typeof node === 'string') {
      if (!node.includes('${')) return node;
      return node.replace(REFERENCE, (_match, source: string | undefined, argument: string | undefined) => {
        if (source === undefined || argument === undefined) return '${';
        const found = lookup(source, argument, path);
        if (found === undefined) return '';
        secrets.push(found);
        return found;
      });
    }
    if (Array.isArray(node)) return node.map((item, index) => walk(item, [...path, index]));
    if (typeof node === 'object' && node !== null) {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, walk(item, [...path, key])]));
    }
    return node;
  };

  return { value: walk(value, []), issues, secrets };
}
