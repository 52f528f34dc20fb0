/**
 * Loads a fleet.yaml for commands that print what a fleet needs (`rbac`, `aws-policy`) without holding its
 * secrets: only the config file itself is read; other files (keys) and unset environment variables get
 * placeholders, which these commands never print.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { LoadResult } from '../config/index.js';
import { loadConfig } from '../config/index.js';

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
