/**
 * Every request the client sends, checked against GitHub's own OpenAPI description (@octokit/openapi): the path
 * and method exist, every query parameter is declared, and every JSON body validates against the operation's
 * request schema. Run for github.com (enterprise routes from the GHEC description, as enterprise accounts are GHEC)
 * and for GHES (whose API lives under /api/v3).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Simulator } from '../../src/sim/github/index.js';
import type { SentRequest } from './helpers.js';
import { clientFor, startSim } from './helpers.js';

type Json = Record<string, unknown>;
interface Operation {
  parameters?: Json[];
  requestBody?: { content?: Record<string, { schema?: Json }> };
}
interface Spec {
  paths: Record<string, Record<string, Operation>>;
  components: Json;
}

const require = createRequire(import.meta.url);
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function loadSpec(file: string): Spec {
  return JSON.parse(readFileSync(require.resolve(`@octokit/openapi/generated/${file}`), 'utf8')) as Spec;
}

/** Inlines `$ref`s (the description is self-contained; request schemas are small). */
function resolve(spec: Spec, value: unknown, seen: string[] = []): unknown {
  if (Array.isArray(value)) return value.map((v) => resolve(spec, v, seen));
  if (typeof value !== 'object' || value === null) return value;
  const ref = (value as Json).$ref;
  if (typeof ref === 'string') {
    if (seen.includes(ref)) return {};
    const target = ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((node, key) => (node as Json)[key], spec);
    return resolve(spec, target, [...seen, ref]);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(spec, v, seen)]));
}

function matcher(template: string): RegExp {
  return new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
}

interface Checker {
  check(request: SentRequest): string[];
}

/** Uses the first description that has the operation (github.com, then GHEC for enterprise routes). */
function checker(specs: Spec[], basePath: string): Checker {
  const checkers = specs.map((spec) => singleChecker(spec, basePath));
  return {
    check(request) {
      let first: string[] | null = null;
      for (const c of checkers) {
        const problems = c.check(request);
        if (!problems.some((p) => p.endsWith('no such operation'))) return problems;
        first ??= problems;
      }
      return first ?? [];
    },
  };
}

function singleChecker(spec: Spec, basePath: string): Checker {
  const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
  const paths = Object.keys(spec.paths).map((p) => ({ template: p, regex: matcher(p) }));
  const validators = new Map<string, ValidateFunction>();
  return {
    check(request) {
      const url = new URL(request.url);
      const path = url.pathname.startsWith(basePath) ? url.pathname.slice(basePath.length) : url.pathname;
      const method = request.method.toLowerCase();
      // Literal segments win over parameters, as in GitHub's router (runner-groups vs {runner_id}).
      const candidates = paths.filter((p) => p.regex.test(path) && spec.paths[p.template]![method]);
      candidates.sort((a, b) =>
        (b.template.match(/\{/g)?.length ?? 0) < (a.template.match(/\{/g)?.length ?? 0) ? 1 : -1,
      );
      const found = candidates[0];
      if (!found) return [`${request.method} ${path}: no such operation`];
      const op = resolve(spec, spec.paths[found.template]![method]) as Operation;
      const problems: string[] = [];
      const declared = new Set(
        (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name as string),
      );
      for (const name of url.searchParams.keys()) {
        if (!declared.has(name))
          problems.push(`${request.method} ${found.template}: undeclared query parameter ${name}`);
      }
      const schema = op.requestBody?.content?.['application/json']?.schema;
      if (request.body !== null && request.body !== '') {
        if (!schema) {
          problems.push(`${request.method} ${found.template}: sends a body the operation does not take`);
        } else {
          const key = `${method} ${found.template}`;
          let validate = validators.get(key);
          if (!validate) {
            validate = ajv.compile(schema);
            validators.set(key, validate);
          }
          if (!validate(JSON.parse(request.body))) {
            problems.push(
              `${request.method} ${found.template}: ${ajv.errorsText(validate.errors)} in ${request.body}`,
            );
          }
        }
      }
      return problems;
    },
  };
}

/** Exercises every operation the client has. */
async function exercise(sim: Simulator, auth: 'app' | 'pat'): Promise<SentRequest[]> {
  const t = clientFor(sim, { auth });
  const org = { org: 'octo-org' };
  const repo = { repo: 'octo-org/app' };
  const a = await t.client.generateJitConfig(org, {
    name: 'conf-1',
    runnerGroup: 'linux',
    labels: ['linux', 'x64'],
    workFolder: '_work',
  });
  await t.client.generateJitConfig(org, { name: 'conf-1', runnerGroup: 'linux', labels: ['linux'] });
  const b = await t.client.generateJitConfig(repo, {
    name: 'conf-2',
    runnerGroup: 'Default',
    labels: ['linux'],
  });
  if (auth === 'pat')
    await t.client.generateJitConfig(
      { enterprise: sim.enterprise },
      { name: 'conf-3', runnerGroup: 'Default', labels: ['linux'] },
    );
  await t.client.registrationToken(org);
  await t.client.registrationToken(repo);
  await t.client.listRunners(org, 'conf-');
  await t.client.listRunners(repo, 'conf-');
  await t.client.getRunner(org, a.runner.id);
  await t.client.deleteRunner(org, a.runner.id);
  await t.client.deleteRunner(repo, b.runner.id);
  const [job] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['self-hosted', 'linux'] });
  await t.client.getJob('octo-org', 'app', job!.id);
  return t.sent;
}

describe.each([
  { name: 'github.com', files: ['api.github.com.json', 'ghec.json'], ghes: false },
  { name: 'GHES 3.19', files: ['ghes-3.19.json'], ghes: true },
])('requests sent to $name', ({ files, ghes }) => {
  let sim: Simulator;
  let specs: Spec[];
  beforeAll(async () => {
    specs = files.map(loadSpec);
    sim = await startSim({ ghes });
  });
  afterAll(async () => {
    await sim.close();
  });

  it.each(['app', 'pat'] as const)(
    'conform to the OpenAPI description (%s auth)',
    async (auth) => {
      await sim.reset();
      const sent = await exercise(sim, auth);
      const check = checker(specs, ghes ? '/api/v3' : '');
      const operations = new Set(
        sent.map((s) => `${s.method} ${new URL(s.url).pathname.replace(/\d+/g, 'N')}`),
      );
      expect(operations.size).toBeGreaterThanOrEqual(auth === 'app' ? 12 : 11);
      expect(sent.flatMap((s) => check.check(s))).toEqual([]);
    },
    60_000,
  );

  it('would notice a request that does not conform', () => {
    const check = checker(specs, ghes ? '/api/v3' : '');
    const base = `${sim.apiUrl}/orgs/octo-org/actions/runners/generate-jitconfig`;
    expect(
      check.check({
        method: 'POST',
        url: base,
        body: JSON.stringify({ name: 'x', runner_group_id: 1, labels: [] }),
      }),
    ).toHaveLength(1);
    expect(
      check.check({ method: 'GET', url: `${sim.apiUrl}/orgs/octo-org/actions/runners?prefix=x`, body: null }),
    ).toHaveLength(1);
    expect(
      check.check({ method: 'PUT', url: `${sim.apiUrl}/orgs/octo-org/actions/nothing`, body: null }),
    ).toHaveLength(1);
  });
});
