/**
 * The provider list and the folders agree: every folder of src/providers is one module of modules.ts with the same
 * kind, a schema whose `kind` literal is that kind, a set-up, and a contract test run against a real peer.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { providerModules } from './modules.js';
import { providerKinds, providerSchema } from './schemas.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('../../', import.meta.url));
const folders = readdirSync(here, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

/** Files under `dir` (recursively) whose text mentions runProviderContract. */
function contractTests(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) => `${e.parentPath}/${e.name}`)
    .filter((file) => readFileSync(file, 'utf8').includes('runProviderContract('));
}

describe('provider list', () => {
  it('names every provider folder once, by its folder name', () => {
    expect(providerModules.map((m) => m.kind).sort()).toEqual(folders);
    expect(new Set(providerKinds).size).toBe(providerKinds.length);
  });

  it.each(providerModules.map((m) => [m.kind, m] as const))(
    '%s: module.ts exports it with its own schema and a set-up',
    async (kind, module) => {
      const url = pathToFileURL(`${here}${kind}/module.ts`).href;
      const fromFolder = (await import(/* @vite-ignore */ url)) as Record<string, unknown>;
      expect(Object.values(fromFolder)).toContain(module);
      expect(module.schema.shape.kind.value).toBe(kind);
      expect(typeof module.setup).toBe('function');
    },
  );

  it('the fleet schema dispatches on exactly the listed kinds', () => {
    expect(providerSchema.options.map((o) => o.shape.kind.value)).toEqual(providerKinds);
  });

  it.each(folders)('%s: a contract test runs the shared provider contract', (kind) => {
    const files = [...contractTests(`${here}${kind}`), ...contractTests(`${repo}test`)].filter((f) =>
      readFileSync(f, 'utf8').includes(`'${kind}`),
    );
    expect(files, `no test file runs runProviderContract for ${kind}`).not.toEqual([]);
  });
});
