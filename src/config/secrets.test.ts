import { describe, expect, it } from 'vitest';
import { resolveSecrets } from './secrets.js';

const files: Record<string, string> = {
  '/etc/rf/token': 'file-token\n',
  '/cfg/relative.txt': 'rel-value\n\n',
};
const readFile = (path: string) => {
  const content = files[path];
  if (content === undefined)
    throw Object.assign(new Error(`ENOENT: ${path} content would be here`), { code: 'ENOENT' });
  return content;
};
const sources = { env: { TOKEN: 'env-token', EMPTY: '' }, readFile, baseDir: '/cfg' };

describe('resolveSecrets', () => {
  it('replaces env and file references anywhere in strings, keeping other values', () => {
    const result = resolveSecrets(
      {
        a: '${env:TOKEN}',
        b: ['x-${file:/etc/rf/token}-y', 3, true, null],
        c: { d: '${file:relative.txt}' },
        e: 'no reference',
      },
      sources,
    );
    expect(result.issues).toEqual([]);
    expect(result.value).toEqual({
      a: 'env-token',
      b: ['x-file-token-y', 3, true, null],
      c: { d: 'rel-value' },
      e: 'no reference',
    });
    expect(result.secrets.sort()).toEqual(['env-token', 'file-token', 'rel-value']);
  });

  it('treats $${ as a literal ${', () => {
    expect(resolveSecrets({ a: 'cost: $${env:TOKEN} and ${x' }, sources).value).toEqual({
      a: 'cost: ${env:TOKEN} and ${x',
    });
  });

  it('reports each failed reference at its path, without the value or the reader message', () => {
    const result = resolveSecrets(
      {
        list: ['${env:MISSING}'],
        empty: '${env:EMPTY}',
        file: '${file:/nope}',
        bad: '${env:1X}',
        unknown: '${vault:kv/x}',
        blank: '${file:}',
      },
      sources,
    );
    expect(result.issues).toEqual([
      { path: ['list', 0], message: 'environment variable MISSING is not set' },
      { path: ['empty'], message: 'environment variable EMPTY is empty' },
      { path: ['file'], message: 'cannot read file /nope: no such file' },
      { path: ['bad'], message: '${env:1X} is not a valid environment variable name' },
      { path: ['unknown'], message: 'unknown reference ${vault:...}; use ${env:NAME} or ${file:PATH}' },
      { path: ['blank'], message: '${file:} needs a path' },
    ]);
  });

  it('reads a file once however often it is referenced', () => {
    let reads = 0;
    const counting = { ...sources, readFile: (path: string) => (reads++, readFile(path)) };
    resolveSecrets({ a: '${file:/etc/rf/token}', b: '${file:/etc/rf/token}' }, counting);
    expect(reads).toBe(1);
  });
});
