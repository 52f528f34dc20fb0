/**
 * Loads a fleet.yaml for commands that print what a fleet needs (`rbac`, `aws-policy`) without holding its
 * secrets: only the config file itself is read; other files (keys) and unset environment variables get
 * placeholders, which these commands never print.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FleetConfig, LoadResult } from '../config/index.js';
import { formatProblem, loadConfig } from '../config/index.js';

/** A syntactically valid stand-in for `${file:...}` secrets. */
const PLACEHOLDER_PEM = '-----BEGIN PRIVATE KEY-----\nUExBQ0VIT0xERVI=\n-----END PRIVATE KEY-----';

export function loadConfigWithoutSecrets(file: string, env: NodeJS.ProcessEnv): LoadResult {
  const configPath = resolve(file);
  const withPlaceholders = new Proxy(env, { get: (target, key: string) => target[key] ?? 'placeholder' });
  return loadConfig(file, {
    env: withPlaceholders,
    readFile: (path) => (resolve(path) === configPath ? readFileSync(path, 'utf8') : PLACEHOLDER_PEM),
  });
}

/** The config, or null after every problem went to `stderr` (FILE:LINE:COL each): the command then exits 2. */
export function configOrProblems(
  file: string,
  env: NodeJS.ProcessEnv,
  stderr: { write(text: string): unknown },
): FleetConfig | null {
  const result = loadConfigWithoutSecrets(file, env);
  if (result.ok) return result.config;
  for (const problem of result.problems) stderr.write(`${formatProblem(problem)}\n`);
  return null;
}
