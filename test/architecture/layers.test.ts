/**
 * The architecture as a check: LAYERS in eslint.config.js is the direction of imports between the folders of src/.
 * Lint enforces it on every production file (`npm run lint`); here, deliberate bad imports show the rule failing, the
 * table itself is shown to have no cycle, and the real import graph of src/ is checked against it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { LAYERS } from '../../eslint.config.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const src = path.join(repo, 'src');
const layers = LAYERS;

async function lint(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: repo });
  const [result] = await eslint.lintText(code, { filePath: path.join(repo, file) });
  return result!.messages.filter((m) => m.ruleId === 'layers/imports').map((m) => m.message);
}

describe('import direction (lint)', () => {
  it.each([
    [
      'src/core/fixture.ts',
      "import { Store } from '../store/store.js';",
      'src/core must not import src/store',
    ],
    [
      'src/core/planner/fixture.ts',
      "import type { Provider } from '../../providers/provider.js';",
      'src/core must not import src/providers',
    ],
    ['src/core/fixture.ts', "import { EC2Client } from '@aws-sdk/client-ec2';", 'src/core imports no SDK'],
    [
      'src/providers/ec2/fixture.ts',
      "import { createGitHubClient } from '../../github/index.js';",
      'src/providers must not import src/github',
    ],
    [
      'src/store/fixture.ts',
      "export { Reconciler } from '../core/reconciler.js';\nimport { x } from '../server/index.js';",
      'src/store must not import src/server',
    ],
    [
      'src/sim/github/fixture.ts',
      "const m = await import('../../core/planner.js');",
      'src/sim must not import src/core',
    ],
    [
      'src/config/fixture.ts',
      "import { Ec2InstanceProvider } from '../providers/ec2/ec2-provider.js';",
      'src/config must not import src/providers',
    ],
    [
      'src/lib/fixture.ts',
      "import { DEFAULTS } from '../config/defaults.js';",
      'src/lib must not import src/config',
    ],
  ])('%s: a deliberate bad import is an error', async (file, code, message) => {
    const messages = await lint(file, code);
    expect(messages.length, `no layers/imports error for ${code}`).toBeGreaterThan(0);
    expect(messages[0]).toContain(message);
  });

  it.each([
    ['src/providers/ec2/fixture.ts', "import type { Provider } from '../../core/provider-port.js';"],
    [
      'src/config/fixture.ts',
      "import { providerSchema } from '../providers/schemas.js';\nimport { ec2ProviderSchema } from '../providers/ec2/schema.js';",
    ],
    ['src/sim/ec2/fixture.ts', "import { TAG_FLEET } from '../../aws/tags.js';"],
    ['src/core/fixture.test.ts', "import { Store } from '../store/store.js';"],
  ])('%s: an allowed import passes', async (file, code) => {
    expect(await lint(file, code)).toEqual([]);
  });
});

describe('the layer table', () => {
  it('names every folder of src/ and only those', () => {
    const folders = readdirSync(src, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(Object.keys(layers).sort()).toEqual(folders);
    for (const allowed of Object.values(layers)) for (const a of allowed) expect(folders).toContain(a);
  });

  it('has no cycle: the layers can be put in one order, each importing only earlier ones', () => {
    const order: string[] = [];
    const left = new Map(Object.entries(layers));
    while (left.size > 0) {
      const next = [...left].find(([, allowed]) => allowed.every((a) => order.includes(a)));
      expect(next, `cycle among ${[...left.keys()].join(', ')}`).toBeDefined();
      order.push(next![0]);
      left.delete(next![0]);
    }
    expect(order[0]).toBe('lib');
  });

  it('the import graph of src/ has no edge against it', () => {
    const against: string[] = [];
    const files = readdirSync(src, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts') && !/\.test(-helpers)?\.ts$/.test(e.name))
      .map((e) => path.join(e.parentPath, e.name));
    for (const file of files) {
      const own = path.relative(src, file).split(path.sep)[0]!;
      if (!(own in layers)) continue;
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'(\.[^']+)'/g)) {
        const to = path.relative(src, path.resolve(path.dirname(file), m[1]!)).split(path.sep);
        if (to[0] === '..' || to[0] === own || layers[own]!.includes(to[0]!)) continue;
        const inner = to.join('/');
        if (own === 'config' && /^providers\/([^/]+\/)?(modules|schemas|schema|module)\.js$/.test(inner))
          continue;
        against.push(`${path.relative(repo, file)} -> ${inner}`);
      }
    }
    expect(against).toEqual([]);
  });
});
