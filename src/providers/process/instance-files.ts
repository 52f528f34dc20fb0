/**
 * What the process provider keeps on disk for each runner, in `<workDir>/<name>/` (also the runner's working
 * directory). The record holds no secret, so a restarted controller can re-adopt the runner from it alone.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProcessIdentity } from './proc-identity.js';

export const FILES = {
  /** InstanceRecord as JSON. */
  record: 'instance.json',
  /** The runner's stdout and stderr. */
  log: 'runner.log',
  /** Exit code of the runner command, written by the wrapper when the command ends. */
  exitCode: 'exit-code',
  /** Pid of the wrapper, written by the wrapper itself: covers a crash between spawn and the record update. */
  wrapperPid: 'wrapper.pid',
  /** Token mode only: the config.sh flags including the token, mode 0600, removed when the runner ends. */
  tokenConfig: 'token-config.json',
} as const;

export interface InstanceRecord {
  readonly version: 1;
  readonly name: string;
  readonly fleet: string;
  readonly scaleSet: string;
  /** ms epoch */
  readonly createdAt: number;
  readonly registration: 'jit' | 'token';
  /** The wrapper process (leader of the runner's process group); absent until it is spawned. */
  readonly process?: ProcessIdentity;
}

function isIdentity(value: unknown): value is ProcessIdentity {
  const v = value as Partial<ProcessIdentity> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.pid === 'number' &&
    typeof v.startTicks === 'string' &&
    typeof v.bootId === 'string'
  );
}

function isRecord(value: unknown): value is InstanceRecord {
  const v = value as Partial<InstanceRecord> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    v.version === 1 &&
    typeof v.name === 'string' &&
    typeof v.fleet === 'string' &&
    typeof v.scaleSet === 'string' &&
    typeof v.createdAt === 'number' &&
    (v.registration === 'jit' || v.registration === 'token') &&
    (v.process === undefined || isIdentity(v.process))
  );
}

/** The record, or null when the directory has none (not created by us, or a create that crashed early). */
export async function readRecord(dir: string): Promise<InstanceRecord | null> {
  let text: string;
  try {
    text = await readFile(join(dir, FILES.record), 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

/** Written to a temporary file and renamed, so a crash never leaves half a record. */
export async function writeRecord(dir: string, record: InstanceRecord): Promise<void> {
  const tmp = join(dir, `${FILES.record}.tmp`);
  await writeFile(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  await rename(tmp, join(dir, FILES.record));
}

async function readInteger(path: string): Promise<number | null> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

export function readExitCode(dir: string): Promise<number | null> {
  return readInteger(join(dir, FILES.exitCode));
}

export function readWrapperPid(dir: string): Promise<number | null> {
  return readInteger(join(dir, FILES.wrapperPid));
}
