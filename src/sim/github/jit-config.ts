/**
 * `encoded_jit_config` in GitHub's format: base64 of a JSON map whose keys are the runner's config file names
 * (`.runner`, `.credentials`, `.credentials_rsaparams`) and whose values are base64 file contents. actions/runner
 * writes each entry to its root folder and starts as if config.sh had run. The simulator's `.runner` names the
 * simulator's broker as `serverUrl`, exactly where the real file names the Actions service.
 */
import type { KeyObject } from 'node:crypto';
import type { Runner, ScopeRef } from './model.js';

/** The private key in the runner's `.credentials_rsaparams` layout (RSAParameters, standard base64). */
export interface RsaParams {
  readonly d: string;
  readonly dp: string;
  readonly dq: string;
  readonly exponent: string;
  readonly inverseQ: string;
  readonly modulus: string;
  readonly p: string;
  readonly q: string;
}

const b64 = (base64url: unknown): string => Buffer.from(String(base64url), 'base64url').toString('base64');

export function rsaParams(privateKey: KeyObject): RsaParams {
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    d: b64(jwk.d),
    dp: b64(jwk.dp),
    dq: b64(jwk.dq),
    exponent: b64(jwk.e),
    inverseQ: b64(jwk.qi),
    modulus: b64(jwk.n),
    p: b64(jwk.p),
    q: b64(jwk.q),
  };
}

/** Web URL of a scope: what config.sh's --url takes and what `.runner`'s gitHubUrl holds. */
export function scopeWebUrl(web: string, scope: ScopeRef): string {
  switch (scope.kind) {
    case 'org':
      return `${web}/${scope.org}`;
    case 'repo':
      return `${web}/${scope.owner}/${scope.repo}`;
    case 'enterprise':
      return `${web}/enterprises/${scope.enterprise}`;
  }
}

export interface RunnerFiles {
  readonly runner: Record<string, unknown>;
  readonly credentials: Record<string, unknown>;
  readonly rsaParams: RsaParams;
}

/** The three files of a configured runner, as config.sh writes them (camelCase settings). */
export function runnerFiles(
  runner: Runner,
  urls: { web: string; broker: string; tokenUrl: string },
  params: RsaParams,
): RunnerFiles {
  return {
    runner: {
      agentId: runner.id,
      agentName: runner.name,
      poolId: runner.groupId,
      poolName: runner.groupName,
      serverUrl: urls.broker,
      gitHubUrl: scopeWebUrl(urls.web, runner.scope),
      workFolder: '_work',
      ephemeral: runner.ephemeral,
      disableUpdate: true,
    },
    credentials: {
      scheme: 'OAuth',
      data: { clientId: runner.clientId, authorizationUrl: urls.tokenUrl, requireFipsCryptography: 'False' },
    },
    rsaParams: params,
  };
}

const fileB64 = (content: unknown): string =>
  Buffer.from(JSON.stringify(content, null, 2)).toString('base64');

/** Runners share the simulator's key, so the encoded key file is computed once per key. */
const rsaFileCache = new WeakMap<RsaParams, string>();

export function encodeJitConfig(files: RunnerFiles): string {
  let rsaFile = rsaFileCache.get(files.rsaParams);
  if (rsaFile === undefined) {
    rsaFile = fileB64(files.rsaParams);
    rsaFileCache.set(files.rsaParams, rsaFile);
  }
  const map = {
    '.runner': fileB64(files.runner),
    '.credentials': fileB64(files.credentials),
    '.credentials_rsaparams': rsaFile,
  };
  return Buffer.from(JSON.stringify(map)).toString('base64');
}
