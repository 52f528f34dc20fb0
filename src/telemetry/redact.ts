/**
 * Secret scrubbing shared by the logger and by error messages. Two layers:
 * - keys: any property whose name says it holds a secret (token, jitConfig, privateKey, secret, authorization...)
 *   is replaced, at any depth, whatever its value looks like;
 * - values: strings that look like a GitHub token, a JWT, a PEM private key or a long base64 blob (an encoded JIT
 *   config, runner credentials) are replaced wherever they appear, including inside messages and stacks.
 * The second layer is the last resort for a secret that reached a log line under an innocent name.
 */

export const REDACTED = '[REDACTED]';

/** Property names (case-insensitive, `_` and `-` ignored) that always hold secrets. */
export const SECRET_KEYS: readonly string[] = [
  'token',
  'accessToken',
  'registrationToken',
  'installationToken',
  'dashboardToken',
  'jitConfig',
  'encodedJitConfig',
  'encoded_jit_config',
  'privateKey',
  'private_key',
  'secret',
  'webhookSecret',
  'clientSecret',
  'password',
  'authorization',
  'cookie',
  'set-cookie',
  'x-hub-signature-256',
  'x-hub-signature',
  'credentials',
  'jwt',
];

/** Key-name suffixes that also mark a secret (e.g. `githubToken`, `awsSecret`). */
const SECRET_KEY_PATTERN =
  /(token|secret|password|passwd|privatekey|jitconfig|authorization|credentials?|cookie|hubsignature(256)?|jwt)$/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY_PATTERN.test(key.replace(/[-_]/g, ''));
}

const PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[^"]*?-----END [A-Z0-9 ]*PRIVATE KEY-----/g;
/** ghp_ (PAT), gho_ (OAuth), ghu_ (user-to-server), ghs_ (installation), ghr_ (refresh), fine-grained PATs. */
const GITHUB_TOKEN = /\b(?:gh[pousr]_[A-Za-z0-9_]{16,}|github_pat_[A-Za-z0-9_]{20,})/g;
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
/** Standard and URL-safe base64 runs; never starting right after a backslash (a JSON escape such as `\n`). */
const BASE64 = /(?<!\\)(?:[A-Za-z0-9+/]{48,}={0,2}|[A-Za-z0-9_-]{48,})/g;

/** A long run counts as a blob only when it mixes upper case, lower case and digits (not a hex digest or a path). */
function looksRandom(s: string): boolean {
  return /[A-Z]/.test(s) && /[a-z]/.test(s) && /[0-9]/.test(s);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface Scrubber {
  /** Replaces secret-looking substrings and known secret values in `text`. */
  (text: string): string;
}

/**
 * How a configured secret value is found, by its length (see docs/security.md, "Secrets in logs"):
 * - 8 characters or more: every occurrence, anywhere (also in its JSON-escaped form);
 * - 3 to 7 characters: every occurrence that stands as a whole word (not next to a letter, digit or `_`), so a
 *   short secret such as `hook1` is removed but `hook12345` or `webhook1x` stay readable;
 * - 1 or 2 characters: only a whole value (a whole log field, a whole message) equal to it: replacing every `a` or
 *   `80` would destroy the log while hiding nothing (such a secret can be guessed anyway; `validate` warns).
 */
export const SHORT_SECRET_LENGTH = 8;
export const TINY_SECRET_LENGTH = 3;

interface KnownSecrets {
  /** Any occurrence (long secrets) or whole-word occurrences (short ones), raw and JSON-escaped. */
  readonly pattern: RegExp | null;
  /** Tiny secrets: only a whole value equal to one of these (raw and JSON-escaped) is replaced. */
  readonly whole: ReadonlySet<string>;
}

function knownSecrets(secrets: readonly string[]): KnownSecrets {
  const whole = new Set<string>();
  const parts: string[] = [];
  const unique = [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length > 0))]
    // Longest first, so a secret that contains another is replaced whole.
    .sort((a, b) => b.length - a.length);
  for (const secret of unique) {
    // Also the JSON-escaped form, as it appears inside a serialized log line.
    const escaped = JSON.stringify(secret).slice(1, -1);
    const forms = escaped === secret ? [secret] : [secret, escaped];
    if (secret.length < TINY_SECRET_LENGTH) {
      for (const form of forms) whole.add(form);
    } else if (secret.length < SHORT_SECRET_LENGTH) {
      for (const form of forms) parts.push(`(?<![A-Za-z0-9_])${escapeRegExp(form)}(?![A-Za-z0-9_])`);
    } else {
      for (const form of forms) parts.push(escapeRegExp(form));
    }
  }
  return { pattern: parts.length > 0 ? new RegExp(parts.join('|'), 'g') : null, whole };
}

function scrubShapes(text: string): string {
  return text
    .replace(PEM, REDACTED)
    .replace(GITHUB_TOKEN, REDACTED)
    .replace(JWT, REDACTED)
    .replace(BASE64, (m) => (looksRandom(m) ? REDACTED : m));
}

/**
 * Builds a scrubber for free text (an error message, a failure reason): token-shaped values and the configured
 * secret values, each found by the rule above. Never throws.
 */
export function createScrubber(secrets: readonly string[] = []): Scrubber {
  const known = knownSecrets(secrets);
  return (text: string): string => {
    if (typeof text !== 'string') return text;
    if (known.whole.has(text)) return REDACTED;
    const out = known.pattern ? text.replace(known.pattern, REDACTED) : text;
    return scrubShapes(out);
  };
}

/** A JSON string literal, quotes included. */
const JSON_STRING = /"(?:[^"\\]|\\.)*"/g;

/**
 * Builds a scrubber for one serialized JSON log line. It works on the line's string literals only (keys, values,
 * the message), each decoded, scrubbed as free text and encoded again, so a replacement can never break the JSON
 * and a secret next to an escape (`\\n`) is still found; secrets in numbers are the job of `toLoggable`, which sees
 * the values before serialization.
 */
export function createLineScrubber(secrets: readonly string[] = []): Scrubber {
  const scrub = createScrubber(secrets);
  return (line: string): string => {
    if (typeof line !== 'string') return line;
    return line.replace(JSON_STRING, (literal) => {
      let content = literal.slice(1, -1);
      if (content.includes('\\')) {
        try {
          content = JSON.parse(literal) as string;
        } catch {
          // Not a JSON literal after all: scrub the raw text.
        }
      }
      const out = scrub(content);
      return out === content ? literal : JSON.stringify(out);
    });
  };
}

/** Scrubber without known secrets: for error messages built far from the configuration. */
export const scrubSecrets: Scrubber = createScrubber();

/**
 * In a serialized JSON line, replaces the string value of every property whose name marks a secret, at any depth.
 * Works on the text, so it also covers objects nested deeper than the logger's declared redaction paths.
 */
const JSON_STRING_PROPERTY = /"((?:[^"\\]|\\.)*)":("(?:[^"\\]|\\.)*")/g;

export function redactJsonSecretProperties(line: string): string {
  return line.replace(JSON_STRING_PROPERTY, (whole, key: string) =>
    isSecretKey(key) ? `"${key}":"${REDACTED}"` : whole,
  );
}
