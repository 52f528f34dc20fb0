/**
 * Validation rules that span several fields or scale sets. They run on the raw document (secrets resolved, no
 * defaults applied) even when the schema found problems elsewhere, so one run reports everything; each rule only
 * looks at fields whose type is already right, leaving type errors to the schema.
 */
import { DEFAULTS, IMPLICIT_LABEL } from './defaults.js';
import type { PathIssue } from './problem.js';

/** Every rule, as documented in docs/configuration.md. Field formats are documented with each field. */
export const RULES: readonly string[] = [
  'Unknown keys are errors at every level, except inside `template.spec` (passed through to Kubernetes) and ' +
    'top-level keys starting with `x-`, which are ignored so they can hold YAML anchors for `<<: *anchor` merges.',
  '`scaleSets` has at least one entry; scale set names are unique.',
  'A scale set name is a DNS label of at most 40 characters, and no name may be another name followed by `-` and ' +
    'more (`a` and `a-b`): runner names are `<scale-set>-<random>`, so ownership would be ambiguous.',
  '`max` is at least 1 and `minIdle` is at most `max`.',
  '`labels`: 1 to 100 non-empty labels without commas, unique case-insensitively; `self-hosted` is accepted and dropped.',
  'No two scale sets with overlapping scopes serve the same label set (case-insensitive) at the same `priority`: a ' +
    'job could go to either. Scopes overlap when equal, when a repository belongs to the organization, or when one ' +
    'is an enterprise.',
  '`registration: jit` needs `ephemeral: true` (a JIT runner takes exactly one job); persistent runners use ' +
    '`registration: token`.',
  '`discovery: scale-set` needs `registration: jit` (the runner scale set hands out JIT configs only).',
  'A repository-scoped scale set cannot use a runner group other than `Default`.',
  '`scope.enterprise` needs `github.auth.token` (a classic PAT): GitHub Apps cannot manage enterprise runners.',
  '`github.auth` has exactly one of `app` or `token`; `app.privateKey` is a PEM private key.',
  '`scope` has exactly one of `org`, `repo` (`owner/name`) or `enterprise`.',
  '`identity` is only allowed with the `kubernetes` provider and has at least one of `aws`, `gcp`, `azure`, each ' +
    'in its provider’s format.',
  'An unknown `provider.kind` is an error that lists the known kinds.',
  'Every `${env:NAME}` must name a set, non-empty variable and every `${file:PATH}` a readable file.',
];

type Raw = Record<string, unknown>;
const isRecord = (value: unknown): value is Raw =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

type ScopeKey = { kind: 'org' | 'repo' | 'enterprise'; value: string };

function scopeOf(raw: unknown): ScopeKey | undefined {
  if (!isRecord(raw)) return undefined;
  const given = (['org', 'repo', 'enterprise'] as const).filter((kind) => typeof raw[kind] === 'string');
  if (given.length !== 1 || Object.keys(raw).length !== 1) return undefined;
  const kind = given[0]!;
  return { kind, value: (raw[kind] as string).toLowerCase() };
}

/** Could one job be served by runners of both scopes? Enterprise runners may serve any organization. */
function scopesOverlap(a: ScopeKey, b: ScopeKey): boolean {
  if (a.kind === b.kind) return a.value === b.value;
  if (a.kind === 'enterprise' || b.kind === 'enterprise') return true;
  const [org, repo] = a.kind === 'org' ? [a, b] : [b, a];
  return repo.value.split('/')[0] === org.value;
}

function labelKey(raw: unknown): string | undefined {
  if (!Array.isArray(raw) || !raw.every((label) => typeof label === 'string')) return undefined;
  const labels = [...new Set(raw.map((label: string) => label.toLowerCase()))].filter(
    (label) => label !== IMPLICIT_LABEL,
  );
  return labels.length === 0 ? undefined : labels.sort().join('\n');
}

interface SetFacts {
  readonly index: number;
  readonly raw: Raw;
  readonly name: string | undefined;
}

function checkScaleSet({ index, raw }: SetFacts, appAuth: boolean): PathIssue[] {
  const at = (...path: PropertyKey[]) => ['scaleSets', index, ...path];
  const issues: PathIssue[] = [];
  const { minIdle, max, ephemeral, scope, identity, provider } = raw;
  const registration = raw.registration ?? DEFAULTS.registration;
  const runnerGroup = raw.runnerGroup ?? DEFAULTS.runnerGroup;
  if (typeof minIdle === 'number' && typeof max === 'number' && minIdle > max) {
    issues.push({ path: at('minIdle'), message: `must not exceed max (${max})` });
  }
  if (ephemeral === false && registration === 'jit') {
    issues.push({
      path: at('ephemeral'),
      message: 'registration jit needs ephemeral: true (a JIT runner takes one job); use registration: token',
    });
  }
  if (raw.discovery === 'scale-set' && registration !== 'jit') {
    issues.push({
      path: at(raw.registration === undefined ? 'discovery' : 'registration'),
      message: 'discovery scale-set needs registration: jit (a runner scale set hands out JIT configs only)',
    });
  }
  const scopeKey = scopeOf(scope);
  if (scopeKey?.kind === 'enterprise' && appAuth) {
    issues.push({
      path: at('scope', 'enterprise'),
      message:
        'enterprise scope needs github.auth.token (a classic PAT); a GitHub App cannot manage enterprise runners',
    });
  }
  if (scopeKey?.kind === 'repo' && typeof runnerGroup === 'string' && runnerGroup !== DEFAULTS.runnerGroup) {
    issues.push({
      path: at('runnerGroup'),
      message: `repository runners are always in the ${DEFAULTS.runnerGroup} group; remove runnerGroup or use an org scope`,
    });
  }
  if (
    identity !== undefined &&
    isRecord(provider) &&
    typeof provider.kind === 'string' &&
    provider.kind !== 'kubernetes'
  ) {
    issues.push({
      path: at('identity'),
      message: `identity is only supported by the kubernetes provider (this scale set uses ${provider.kind})`,
    });
  }
  return issues;
}

function checkNames(sets: readonly SetFacts[]): PathIssue[] {
  const issues: PathIssue[] = [];
  const first = new Map<string, number>();
  for (const { index, name } of sets) {
    if (name === undefined) continue;
    const earlier = first.get(name);
    if (earlier !== undefined) {
      issues.push({
        path: ['scaleSets', index, 'name'],
        message: `duplicate scale set name (also scaleSets[${earlier}])`,
      });
    } else first.set(name, index);
  }
  for (const [name, index] of first) {
    for (const [other, otherIndex] of first) {
      if (name.startsWith(`${other}-`)) {
        issues.push({
          path: ['scaleSets', index, 'name'],
          message:
            `starts with '${other}-', the runner name prefix of scale set '${other}' (scaleSets[${otherIndex}]): ` +
            'runner ownership would be ambiguous; rename one',
        });
      }
    }
  }
  return issues;
}

function checkLabelOverlap(sets: readonly SetFacts[]): PathIssue[] {
  const issues: PathIssue[] = [];
  const keyed = sets.flatMap((set) => {
    const labels = labelKey(set.raw.labels);
    const scope = scopeOf(set.raw.scope);
    const priority = set.raw.priority ?? DEFAULTS.priority;
    return labels !== undefined && scope !== undefined && typeof priority === 'number'
      ? [{ ...set, labels, scope, priority }]
      : [];
  });
  keyed.forEach((set, position) => {
    const clash = keyed
      .slice(0, position)
      .find(
        (other) =>
          other.labels === set.labels &&
          other.priority === set.priority &&
          scopesOverlap(other.scope, set.scope),
      );
    if (clash !== undefined) {
      issues.push({
        path: ['scaleSets', set.index, 'labels'],
        message:
          `scale set ${clash.name === undefined ? '' : `'${clash.name}' `}(scaleSets[${clash.index}]) serves the same ` +
          `labels at the same priority (${set.priority}) in an overlapping scope; change the labels or the priority`,
      });
    }
  });
  return issues;
}

/** The cross-field rules, on the raw (secret-resolved) document. */
export function checkRules(raw: unknown): PathIssue[] {
  if (!isRecord(raw) || !Array.isArray(raw.scaleSets)) return [];
  const auth = isRecord(raw.github) && isRecord(raw.github.auth) ? raw.github.auth : {};
  const appAuth = auth.app !== undefined && auth.token === undefined;
  const sets: SetFacts[] = raw.scaleSets.flatMap((set: unknown, index) =>
    isRecord(set) ? [{ index, raw: set, name: typeof set.name === 'string' ? set.name : undefined }] : [],
  );
  return [
    ...sets.flatMap((set) => checkScaleSet(set, appAuth)),
    ...checkNames(sets),
    ...checkLabelOverlap(sets),
  ];
}
