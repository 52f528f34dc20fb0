/**
 * What `runner-fleet start` loads: without leader election and without a Kubernetes scale set it never loads the
 * Kubernetes client (@kubernetes/client-node: some 27 MB of heap and 40 MB resident, docs/core.md "Memory"). The
 * built CLI runs against the simulator with a module resolve hook that writes every module it loads to a file.
 * Needs `npm run build`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { StartedCli } from '../support/start-cli.js';
import { startFleetPerFile } from '../support/start-fleet.js';

const fleet = startFleetPerFile();

describe('modules runner-fleet start loads', () => {
  it('does not load the Kubernetes client for a fleet without Kubernetes', async () => {
    const hooks = mkdtempSync(join(tmpdir(), 'runner-fleet-modules-'));
    const loaded = join(hooks, 'loaded.txt');
    try {
      writeFileSync(
        join(hooks, 'hook.mjs'),
        `import { appendFileSync } from 'node:fs';\n` +
          `export async function resolve(specifier, context, next) {\n` +
          `  const resolved = await next(specifier, context);\n` +
          `  appendFileSync(${JSON.stringify(loaded)}, resolved.url + '\\n');\n` +
          `  return resolved;\n}\n`,
      );
      writeFileSync(
        join(hooks, 'register.mjs'),
        `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(hooks, 'hook.mjs')).href)});\n`,
      );
      const cli = new StartedCli(fleet.configPath, {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
          // One process (a heap limit is given), with the hook.
          NODE_OPTIONS: `--max-old-space-size=160 --import ${pathToFileURL(join(hooks, 'register.mjs')).href}`,
        },
      });
      try {
        await cli.ready();
      } finally {
        await cli.kill();
      }
      const urls = readFileSync(loaded, 'utf8').split('\n');
      // The hook sees the controller's own modules: it did run.
      expect(urls.some((u) => u.endsWith('/dist/app/compose.js'))).toBe(true);
      expect(urls.filter((u) => u.includes('@kubernetes/client-node'))).toEqual([]);
    } finally {
      rmSync(hooks, { recursive: true, force: true });
    }
  });
});
