/**
 * The runner's OAuth credentials: its RSA key (from `.credentials_rsaparams`, or generated in token mode) signs a
 * short-lived JWT client assertion that the broker trades for an access token, as actions/runner does.
 */
import { createPrivateKey, generateKeyPair, randomUUID, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { RsaParamsFile } from './jit-config.js';

const generateKeyPairAsync = promisify(generateKeyPair);

const url64 = (b64: string): string => Buffer.from(b64, 'base64').toString('base64url');
const std64 = (b64url: unknown): string => Buffer.from(String(b64url), 'base64url').toString('base64');

export function privateKeyFromParams(params: RsaParamsFile): KeyObject {
  return createPrivateKey({
    key: {
      kty: 'RSA',
      n: url64(params.modulus),
      e: url64(params.exponent),
      d: url64(params.d),
      p: url64(params.p),
      q: url64(params.q),
      dp: url64(params.dp),
      dq: url64(params.dq),
      qi: url64(params.inverseQ),
    },
    format: 'jwk',
  });
}

/** The private key in `.credentials_rsaparams` form (RSAParameters, standard base64), as config.sh writes it. */
export function rsaParamsOf(key: KeyObject): RsaParamsFile {
  const jwk = key.export({ format: 'jwk' });
  return {
    d: std64(jwk.d),
    dp: std64(jwk.dp),
    dq: std64(jwk.dq),
    exponent: std64(jwk.e),
    inverseQ: std64(jwk.qi),
    modulus: std64(jwk.n),
    p: std64(jwk.p),
    q: std64(jwk.q),
  };
}

/** A fresh key for a runner configured in token mode, with its public half in RSAParameters form. */
export async function newRunnerKey(): Promise<{ privateKey: KeyObject; modulus: string; exponent: string }> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  return { privateKey, modulus: std64(jwk.n), exponent: std64(jwk.e) };
}

/** RS256 JWT with sub = iss = client id, aud = the token URL, valid for 5 minutes. */
export function clientAssertion(clientId: string, audience: string, key: KeyObject, nowMs: number): string {
  const now = Math.floor(nowMs / 1000);
  const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })).toString('base64url');
  const claims = Buffer.from(
    JSON.stringify({
      sub: clientId,
      iss: clientId,
      aud: audience,
      jti: randomUUID(),
      nbf: now - 30,
      iat: now - 30,
      exp: now + 300,
    }),
  ).toString('base64url');
  const signature = sign('RSA-SHA256', Buffer.from(`${header}.${claims}`), key).toString('base64url');
  return `${header}.${claims}.${signature}`;
}
