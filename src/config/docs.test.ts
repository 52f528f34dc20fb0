import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { providerKinds } from '../providers/schemas.js';
import { DOCS_EXAMPLE, renderConfigDocs } from './docs.js';
import { parseConfig } from './load.js';
import { formatProblem } from './problem.js';
import { RULES } from './rules.js';

const committed = () => readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

describe('docs/configuration.md', () => {
  it('is exactly what scripts/gen-config-docs.ts generates (run it after changing the schema)', () => {
    expect(committed()).toBe(renderConfigDocs());
  });

  it('covers every provider, every rule, durations and secret references', () => {
    const docs = renderConfigDocs();
    for (const kind of providerKinds) expect(docs).toContain(`### \`${kind}\``);
    for (const rule of RULES) expect(docs).toContain(rule);
    expect(docs).toContain('## Durations');
    expect(docs).toContain('`${env:NAME}`');
    expect(docs).toContain('| `scaleSets[].bootstrapTimeout` | duration (at most 1d) | `10m` |');
    expect(docs).toContain('| `github.url` | URL | `https://github.com` |');
  });

  it('shows an example that validates', () => {
    const result = parseConfig(DOCS_EXAMPLE, 'example.yaml', {
      env: { WEBHOOK_SECRET: 'hook' },
      readFile: () =>
        '-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END RSA PRIVATE KEY-----\n',
    });
    expect(result.ok ? [] : result.problems.map(formatProblem)).toEqual([]);
  });
});
