import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BEGIN_MARK,
  END_MARK,
  renderHelmRules,
  renderSecurityTables,
  spliceGenerated,
} from './rbac-render.js';
import { CONTROLLER_RULES, RUNNER_RULES } from './rbac-rules.js';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

describe('generated RBAC files', () => {
  it('the chart rule templates match the rule data (regenerate: npx tsx scripts/gen-rbac.ts)', () => {
    expect(read('deploy/helm/runner-fleet/templates/_rbac-rules.tpl')).toBe(renderHelmRules());
  });

  it('docs/security.md tables match the rule data (regenerate: npx tsx scripts/gen-rbac.ts)', () => {
    const doc = read('docs/security.md');
    expect(doc).toBe(spliceGenerated(doc, renderSecurityTables()));
  });

  it('the security tables name every rule and its reason', () => {
    const tables = renderSecurityTables();
    for (const rule of [...CONTROLLER_RULES, ...RUNNER_RULES.kubernetes]) {
      expect(tables).toContain(`\`${rule.resource}`);
      expect(tables).toContain(rule.why);
    }
  });

  it('splices only between the markers', () => {
    const doc = `intro\n${BEGIN_MARK}\nold\n${END_MARK}\noutro\n`;
    expect(spliceGenerated(doc, 'new\n')).toBe(`intro\n${BEGIN_MARK}\nnew\n${END_MARK}\noutro\n`);
    expect(() => spliceGenerated('no markers', 'x')).toThrow(/markers/);
  });
});
