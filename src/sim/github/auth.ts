/**
 * GitHub App authentication as github.com does it: RS256 App JWTs checked against the App's public key with
 * GitHub's iat/exp rules, expiring installation tokens, and one accepted classic PAT.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { DOCS, GitHubError, badCredentials } from './errors.js';
import { installationToken, personalAccessToken } from './ids.js';
import type { Installation } from './model.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export type Identity =
  | { readonly kind: 'app' }
  | { readonly kind: 'installation'; readonly installation: Installation }
  | { readonly kind: 'pat' }
  | { readonly kind: 'anonymous'; readonly ip: string };

/** GitHub's own messages: @octokit/auth-app recognises the clock-skew ones and retries with corrected time. */
export const JWT_MESSAGES = {
  undecodable: 'A JSON web token could not be decoded',
  expired:
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
  tooFar: "'Expiration time' claim ('exp') is too far in the future",
  issuedAt:
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
  issuer: "'Issuer' claim ('iss') must be an Integer",
} as const;

/** Seconds of clock drift GitHub tolerates on `iat`. */
const IAT_DRIFT_S = 60;
/** Longest JWT lifetime GitHub accepts. */
const MAX_JWT_LIFETIME_S = 600;

export interface KeyMaterial {
  readonly privateKeyPem: string;
  readonly publicKey: KeyObject;
}

export async function generateRsaKey(): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  return generateKeyPairAsync('rsa', { modulusLength: 2048 });
}

/** The App key: generated (PKCS#1 PEM, like the file GitHub lets you download) or loaded from a given PEM. */
export async function appKeyMaterial(pem: string | null): Promise<KeyMaterial> {
  if (pem) {
    const privateKey = createPrivateKey(pem);
    return { privateKeyPem: pem, publicKey: createPublicKey(privateKey) };
  }
  const { privateKey, publicKey } = await generateRsaKey();
  return { privateKeyPem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(), publicKey };
}

interface TokenRecord {
  readonly installationId: number;
  readonly expiresAt: number;
}

export class AppAuth {
  readonly appId: number;
  readonly clientId: string;
  readonly pat: string;
  readonly #publicKey: KeyObject;
  readonly #installations: (id: number) => Installation | undefined;
  readonly #tokens = new Map<string, TokenRecord>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(options: {
    appId: number;
    publicKey: KeyObject;
    pat: string | null;
    installations: (id: number) => Installation | undefined;
    tokenTtlMs: number;
    now: () => number;
  }) {
    this.appId = options.appId;
    this.clientId = `Iv1.${options.appId.toString(16).padStart(16, '0')}`;
    this.pat = options.pat ?? personalAccessToken();
    this.#publicKey = options.publicKey;
    this.#installations = options.installations;
    this.#ttlMs = options.tokenTtlMs;
    this.#now = options.now;
  }

  /** POST /app/installations/{id}/access_tokens */
  issueInstallationToken(installationId: number): { token: string; expiresAt: number } {
    const now = this.#now();
    // Drop expired tokens now and then so a long run does not grow the map without bound.
    if (this.#tokens.size > 1_000) {
      for (const [token, record] of this.#tokens) if (record.expiresAt <= now) this.#tokens.delete(token);
    }
    const token = installationToken();
    const expiresAt = now + this.#ttlMs;
    this.#tokens.set(token, { installationId, expiresAt });
    return { token, expiresAt };
  }

  /** Identity of a request from its Authorization header; throws 401 for a presented but invalid credential. */
  authenticate(authorization: string | undefined, ip: string): Identity {
    if (!authorization) return { kind: 'anonymous', ip };
    const match = /^(token|bearer)\s+(\S+)\s*$/i.exec(authorization);
    if (!match) throw badCredentials();
    const credential = match[2]!;
    if (credential === this.pat) return { kind: 'pat' };
    if (credential.startsWith('ghs_')) {
      const record = this.#tokens.get(credential);
      if (!record || record.expiresAt <= this.#now()) throw badCredentials();
      const installation = this.#installations(record.installationId);
      if (!installation) throw badCredentials();
      return { kind: 'installation', installation };
    }
    if (credential.split('.').length === 3) {
      this.verifyAppJwt(credential);
      return { kind: 'app' };
    }
    throw badCredentials();
  }

  /** Checks signature and claims like GitHub; throws GitHubError 401 with GitHub's message. */
  verifyAppJwt(jwt: string): void {
    const fail = (message: string) => new GitHubError(401, message, { documentationUrl: DOCS.auth });
    const [headerPart, payloadPart, signaturePart] = jwt.split('.') as [string, string, string];
    let header: unknown;
    let claims: unknown;
    try {
      header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
    } catch {
      throw fail(JWT_MESSAGES.undecodable);
    }
    if (!isObject(header) || header.alg !== 'RS256' || !isObject(claims))
      throw fail(JWT_MESSAGES.undecodable);
    const signed = verify(
      'RSA-SHA256',
      Buffer.from(`${headerPart}.${payloadPart}`),
      this.#publicKey,
      Buffer.from(signaturePart, 'base64url'),
    );
    if (!signed) throw fail(JWT_MESSAGES.undecodable);
    const { iss, iat, exp } = claims;
    const issuerOk = iss === this.appId || iss === String(this.appId) || iss === this.clientId;
    if (!issuerOk)
      throw fail(
        typeof iss === 'number' || typeof iss === 'string' ? JWT_MESSAGES.undecodable : JWT_MESSAGES.issuer,
      );
    const now = Math.floor(this.#now() / 1000);
    if (typeof iat !== 'number' || !Number.isInteger(iat) || iat > now + IAT_DRIFT_S)
      throw fail(JWT_MESSAGES.issuedAt);
    if (typeof exp !== 'number' || !Number.isInteger(exp) || exp <= now) throw fail(JWT_MESSAGES.expired);
    if (exp - iat > MAX_JWT_LIFETIME_S || exp > now + MAX_JWT_LIFETIME_S + IAT_DRIFT_S)
      throw fail(JWT_MESSAGES.tooFar);
  }

  /** Forget every installation token (reset). */
  revokeAll(): void {
    this.#tokens.clear();
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
