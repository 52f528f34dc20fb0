/**
 * The settings files config.sh leaves in the runner's root folder: `.runner` (settings), `.credentials` (OAuth
 * client id and token URL) and `.credentials_rsaparams` (the runner's private key), the same three a JIT config
 * carries. run.sh starts from them, as many times as it is run. They hold the key: written 0600.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DecodedJitConfig, RsaParamsFile } from './jit-config.js';
import { JitConfigError, parseCredentials, parseRsaParams, parseSettings } from './jit-config.js';

export interface RunnerConfigFiles {
  readonly runner: Record<string, unknown>;
  readonly credentials: Record<string, unknown>;
  readonly rsaParams: RsaParamsFile;
}

const FILES = {
  runner: '.runner',
  credentials: '.credentials',
  rsaParams: '.credentials_rsaparams',
} as const;

export async function writeRunnerConfig(root: string, files: RunnerConfigFiles): Promise<void> {
  for (const [key, name] of Object.entries(FILES)) {
    const content = files[key as keyof RunnerConfigFiles];
    await writeFile(join(root, name), JSON.stringify(content, null, 2) + '\n', { mode: 0o600 });
  }
}

/** Reads what writeRunnerConfig wrote; JitConfigError naming the file when one is missing or malformed. */
export async function readRunnerConfig(root: string): Promise<DecodedJitConfig> {
  const read = async (name: string): Promise<Record<string, unknown>> => {
    let text: string;
    try {
      text = await readFile(join(root, name), 'utf8');
    } catch (cause) {
      throw new JitConfigError(`the runner is not configured: no ${name} in ${root} (run config.sh first)`, {
        cause,
      });
    }
    try {
      const value: unknown = JSON.parse(text.replace(/^\uFEFF/, ''));
      if (typeof value === 'object' && value !== null && !Array.isArray(value))
        return value as Record<string, unknown>;
    } catch (cause) {
      throw new JitConfigError(`${join(root, name)} is not JSON`, { cause });
    }
    throw new JitConfigError(`${join(root, name)} is not a JSON object`);
  };
  return {
    settings: parseSettings(await read(FILES.runner)),
    credentials: parseCredentials(await read(FILES.credentials)),
    rsaParams: parseRsaParams(await read(FILES.rsaParams)),
  };
}
