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
 * Builds a scrubber. `knownSecrets` are exact values (webhook secret, PAT, dashboard token, private key) that are
 * replaced wherever they appear; values shorter than 8 characters are ignored, so a tiny secret cannot blank out
 * ordinary words.
 */
export function createScrubber(knownSecrets: readonly string[] = []): Scrubber {
  const known = knownSecrets
    .filter((s) => typeof s === 'string' && s.length >= 8)
    // Longest first, so a secret that contains another is replaced whole.
    .sort((a, b) => b.length - a.length)
    .flatMap((s) => {
      // Also match the JSON-escaped form, as it appears inside a serialized log line.
      const escaped = JSON.stringify(s).slice(1, -1);
      return escaped === s ? [escapeRegExp(s)] : [escapeRegExp(s), escapeRegExp(escaped)];
    });
  const knownPattern = known.length > 0 ? new RegExp(known.join('|'), 'g') : null;
  return (text: string): string => {
    let out = text;
    if (knownPattern) out = out.replace(knownPattern, REDACTED);
    return out
      .replace(PEM, REDACTED)
      .replace(GITHUB_TOKEN, REDACTED)
      .replace(JWT, REDACTED)
      .replace(BASE64, (m) => (looksRandom(m) ? REDACTED : m));
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
