/** Identifiers and secrets in the shapes GitHub uses (token prefixes, GUIDs, node ids). */
import { randomBytes, randomUUID } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function randomFrom(alphabet: string, length: number): string {
  // Rejection-free is fine here: a slight bias over a 62-letter alphabet does not matter for a simulator, but the
  // randomness itself must be cryptographic because these strings are bearer secrets.
  const bytes = randomBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[bytes[i]! % alphabet.length];
  return out;
}

/** Installation access token: `ghs_` + 36 characters, as GitHub issues them. */
export const installationToken = (): string => `ghs_${randomFrom(ALNUM, 36)}`;

/** Classic personal access token. */
export const personalAccessToken = (): string => `ghp_${randomFrom(ALNUM, 36)}`;

/** Registration and remove tokens are 29 upper-case characters on GitHub. */
export const runnerToken = (): string => randomFrom(UPPER_ALNUM, 29);

/** Opaque bearer tokens of the runner broker. */
export const brokerToken = (): string => randomFrom(ALNUM, 48);

export const webhookSecret = (): string => randomFrom(ALNUM, 32);

export const guid = (): string => randomUUID();

/** GitHub's legacy node ids are base64 of `0<len>:<Type><id>`; the exact bytes are opaque to clients. */
export const nodeId = (type: string, id: number): string =>
  Buffer.from(`0${type.length}:${type}${id}`).toString('base64');

export const hexSha = (): string => randomBytes(20).toString('hex');
