/**
 * Decoding of an encoded JIT config the way actions/runner does it: base64 -> UTF-8 JSON object of file name to
 * base64 file content; the files are `.runner` (settings), `.credentials` (OAuth client id and token URL) and
 * `.credentials_rsaparams` (the RSA key). Settings are read case-insensitively, as the runner's JSON reader does.
 */

export interface RunnerSettings {
  readonly agentId: number;
  readonly agentName: string;
  readonly poolId: number;
  readonly poolName: string;
  /** Base URL of the service the runner talks to (the simulator's broker). */
  readonly serverUrl: string;
  readonly gitHubUrl: string;
  readonly workFolder: string;
  readonly ephemeral: boolean;
}

export interface OAuthCredentials {
  readonly scheme: 'OAuth';
  readonly clientId: string;
  readonly authorizationUrl: string;
}

export interface RsaParamsFile {
  readonly d: string;
  readonly dp: string;
  readonly dq: string;
  readonly exponent: string;
  readonly inverseQ: string;
  readonly modulus: string;
  readonly p: string;
  readonly q: string;
}

export interface DecodedJitConfig {
  readonly settings: RunnerSettings;
  readonly credentials: OAuthCredentials;
  readonly rsaParams: RsaParamsFile;
}

export class JitConfigError extends Error {
  readonly code = 'bad_jit_config';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JitConfigError';
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function fromBase64(value: string, what: string): string {
  const compact = value.replace(/\s+/g, '');
  if (!BASE64.test(compact) || compact.length % 4 === 1)
    throw new JitConfigError(`${what} is not valid base64`);
  return Buffer.from(compact, 'base64').toString('utf8');
}

function parseObject(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (cause) {
    throw new JitConfigError(`${what} is not JSON`, { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new JitConfigError(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Case-insensitive property access (the runner's deserializer ignores case). */
function prop(record: Record<string, unknown>, name: string): unknown {
  if (name in record) return record[name];
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(record)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function str(record: Record<string, unknown>, name: string, what: string, required = true): string {
  const v = prop(record, name);
  if (typeof v === 'string' && v.length > 0) return v;
  if (typeof v === 'number') return String(v);
  if (required) throw new JitConfigError(`${what} has no ${name}`);
  return '';
}

function int(record: Record<string, unknown>, name: string, what: string): number {
  const v = prop(record, name);
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new JitConfigError(`${what} has no valid ${name}`);
  return n;
}

function bool(record: Record<string, unknown>, name: string): boolean {
  const v = prop(record, name);
  return v === true || (typeof v === 'string' && v.toLowerCase() === 'true');
}

export function decodeJitConfig(encoded: string): DecodedJitConfig {
  const map = parseObject(fromBase64(encoded.trim(), 'the JIT config'), 'the JIT config');
  const files = new Map<string, string>();
  for (const [name, content] of Object.entries(map)) {
    if (typeof content !== 'string') throw new JitConfigError(`the JIT config entry ${name} is not a string`);
    files.set(name, fromBase64(content, `the JIT config entry ${name}`));
  }
  const runnerText = files.get('.runner');
  const credentialsText = files.get('.credentials');
  const rsaText = files.get('.credentials_rsaparams');
  if (runnerText === undefined || credentialsText === undefined || rsaText === undefined) {
    throw new JitConfigError('the JIT config must hold .runner, .credentials and .credentials_rsaparams');
  }
  return {
    settings: parseSettings(parseObject(runnerText, '.runner')),
    credentials: parseCredentials(parseObject(credentialsText, '.credentials')),
    rsaParams: parseRsaParams(parseObject(rsaText, '.credentials_rsaparams')),
  };
}

export function parseSettings(runner: Record<string, unknown>): RunnerSettings {
  return {
    agentId: int(runner, 'agentId', '.runner'),
    agentName: str(runner, 'agentName', '.runner'),
    poolId: int(runner, 'poolId', '.runner'),
    poolName: str(runner, 'poolName', '.runner', false),
    serverUrl: str(runner, 'serverUrl', '.runner'),
    gitHubUrl: str(runner, 'gitHubUrl', '.runner', false),
    workFolder: str(runner, 'workFolder', '.runner', false) || '_work',
    ephemeral: bool(runner, 'ephemeral'),
  };
}

export function parseCredentials(credentials: Record<string, unknown>): OAuthCredentials {
  const scheme = str(credentials, 'scheme', '.credentials');
  if (scheme !== 'OAuth') throw new JitConfigError(`.credentials scheme ${scheme} is not supported`);
  const data = prop(credentials, 'data');
  if (typeof data !== 'object' || data === null) throw new JitConfigError('.credentials has no data');
  const record = data as Record<string, unknown>;
  return {
    scheme: 'OAuth',
    clientId: str(record, 'clientId', '.credentials'),
    authorizationUrl: str(record, 'authorizationUrl', '.credentials'),
  };
}

export function parseRsaParams(params: Record<string, unknown>): RsaParamsFile {
  const field = (name: string) => str(params, name, '.credentials_rsaparams');
  return {
    d: field('d'),
    dp: field('dp'),
    dq: field('dq'),
    exponent: field('exponent'),
    inverseQ: field('inverseQ'),
    modulus: field('modulus'),
    p: field('p'),
    q: field('q'),
  };
}
