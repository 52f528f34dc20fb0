/**
 * Checks HTTP exchanges against GitHub's own OpenAPI description (npm @octokit/openapi): finds the operation by
 * method and path, converts its OpenAPI 3.0 schemas (nullable, $ref) to JSON Schema and validates with ajv.
 * Usable by any suite that wants to hold a client or the simulator to GitHub's API (see test/sim/fidelity.test.ts).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

const require = createRequire(import.meta.url);
const GENERATED = path.join(path.dirname(require.resolve('@octokit/openapi/package.json')), 'generated');
// ajv-formats is CommonJS with a default export; under NodeNext the callable sits on `.default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
) => Ajv;

type Json = Record<string, unknown>;

/** Keywords OpenAPI 3.0 allows that JSON Schema validation does not need. */
const DROP = new Set([
  'nullable',
  'example',
  'examples',
  'discriminator',
  'readOnly',
  'writeOnly',
  'deprecated',
  'xml',
  'externalDocs',
]);

export function descriptionFile(name: 'api.github.com' | 'ghec' | 'newest-ghes'): string {
  if (name !== 'newest-ghes') return path.join(GENERATED, `${name}.json`);
  const versions = readdirSync(GENERATED)
    .map((f) => /^ghes-(\d+)\.(\d+)\.json$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]) || Number(a[2]) - Number(b[2]));
  const newest = versions.at(-1);
  if (!newest) throw new Error(`no ghes-3.*.json in ${GENERATED}`);
  return path.join(GENERATED, newest[0]);
}

interface Operation {
  readonly template: string;
  readonly method: string;
  readonly op: Json;
}

export interface Check {
  readonly ok: boolean;
  /** The operation was found in this description. */
  readonly found: boolean;
  readonly template?: string;
  /** How the body was checked: the documented schema of that status, GitHub's basic-error, or no body. */
  readonly against?: 'documented' | 'basic-error' | 'no-content';
  readonly errors?: string;
}

export class Description {
  readonly name: string;
  readonly #doc: Json;
  readonly #ajv: Ajv;
  readonly #base: string;
  readonly #paths: { regex: RegExp; template: string; params: number; item: Json }[];
  readonly #cache = new Map<string, ValidateFunction>();

  constructor(file: string) {
    this.name = path.basename(file, '.json');
    this.#doc = JSON.parse(readFileSync(file, 'utf8')) as Json;
    this.#base = `https://openapi.test/${this.name}`;
    this.#ajv = new Ajv({ strict: false, allErrors: true, logger: false });
    addFormats(this.#ajv);
    this.#ajv.addFormat('repo.nwo', /^[^/\s]+\/[^/\s]+$/);
    this.#ajv.addFormat('timestamp', true);
    const components = this.#doc.components as Json;
    const schemas = components.schemas as Json;
    const converted: Json = {};
    for (const [name, schema] of Object.entries(schemas)) converted[name] = this.#convert(schema);
    this.#ajv.addSchema({ $id: this.#base, components: { schemas: converted } });
    this.#paths = Object.entries(this.#doc.paths as Json)
      .map(([template, item]) => ({
        template,
        params: (template.match(/\{/g) ?? []).length,
        regex: new RegExp(
          `^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/]+')}$`,
        ),
        item: item as Json,
      }))
      // Static segments win over parameters: /runners/generate-jitconfig before /runners/{runner_id}.
      .sort((a, b) => a.params - b.params);
  }

  /** The operation serving METHOD PATH (path without the /api/v3 prefix and query). */
  operation(method: string, urlPath: string): Operation | undefined {
    const m = method.toLowerCase();
    for (const p of this.#paths) {
      if (p.regex.test(urlPath) && p.item[m])
        return { template: p.template, method: m, op: p.item[m] as Json };
    }
    return undefined;
  }

  hasOperation(method: string, template: string): boolean {
    return Boolean(
      (this.#doc.paths as Json)[template] &&
      ((this.#doc.paths as Json)[template] as Json)[method.toLowerCase()],
    );
  }

  checkResponse(method: string, urlPath: string, status: number, body: unknown): Check {
    const operation = this.operation(method, urlPath);
    if (!operation)
      return { ok: false, found: false, errors: `no operation ${method} ${urlPath} in ${this.name}` };
    const responses = (operation.op.responses ?? {}) as Json;
    const documented = responses[String(status)] as Json | undefined;
    let schema: unknown;
    let against: Check['against'];
    if (documented) {
      const response = this.#deref(documented);
      const content = response.content as Json | undefined;
      schema = (content?.['application/json'] as Json | undefined)?.schema;
      against = schema === undefined ? 'no-content' : 'documented';
    } else if (status >= 400) {
      // GitHub documents only some error statuses per operation; every error body is a basic-error.
      schema = { $ref: '#/components/schemas/basic-error' };
      against = 'basic-error';
    } else {
      return {
        ok: false,
        found: true,
        template: operation.template,
        errors: `status ${status} is not documented for ${method} ${operation.template}`,
      };
    }
    if (against === 'no-content') {
      const ok = body === undefined || body === null || body === '';
      return {
        ok,
        found: true,
        template: operation.template,
        against,
        ...(ok ? {} : { errors: 'expected no body' }),
      };
    }
    const validate = this.#compile(`${method} ${operation.template} ${status} ${against}`, schema);
    const ok = validate(body);
    return {
      ok,
      found: true,
      template: operation.template,
      against,
      ...(ok ? {} : { errors: format(validate.errors) }),
    };
  }

  /** Validates a JSON request body when the operation documents one; `found: false` otherwise. */
  checkRequest(method: string, urlPath: string, body: unknown): Check & { hasSchema: boolean } {
    const operation = this.operation(method, urlPath);
    if (!operation)
      return { ok: false, found: false, hasSchema: false, errors: `no operation ${method} ${urlPath}` };
    const requestBody = operation.op.requestBody ? this.#deref(operation.op.requestBody as Json) : undefined;
    const schema = ((requestBody?.content as Json | undefined)?.['application/json'] as Json | undefined)
      ?.schema;
    if (schema === undefined)
      return { ok: true, found: true, hasSchema: false, template: operation.template };
    const validate = this.#compile(`request ${method} ${operation.template}`, schema);
    const ok = validate(body);
    return {
      ok,
      found: true,
      hasSchema: true,
      template: operation.template,
      ...(ok ? {} : { errors: format(validate.errors) }),
    };
  }

  /** Validates a webhook payload against `x-webhooks` (e.g. `workflow-job-queued`). */
  checkWebhook(name: string, payload: unknown): Check {
    const hooks = this.#doc['x-webhooks'] as Json | undefined;
    const post = (hooks?.[name] as Json | undefined)?.post as Json | undefined;
    const schema = (
      ((post?.requestBody as Json | undefined)?.content as Json | undefined)?.['application/json'] as
        Json | undefined
    )?.schema;
    if (!schema) return { ok: false, found: false, errors: `no x-webhooks ${name} in ${this.name}` };
    const validate = this.#compile(`webhook ${name}`, schema);
    const ok = validate(payload);
    return { ok, found: true, template: name, ...(ok ? {} : { errors: format(validate.errors) }) };
  }

  #compile(key: string, schema: unknown): ValidateFunction {
    let validate = this.#cache.get(key);
    if (!validate) {
      validate = this.#ajv.compile(this.#convert(schema) as Json);
      this.#cache.set(key, validate);
    }
    return validate;
  }

  #deref(node: Json): Json {
    let current = node;
    for (let i = 0; i < 10 && typeof current.$ref === 'string'; i++) {
      const parts = (current.$ref as string).replace(/^#\//, '').split('/');
      current = parts.reduce<Json>((acc, part) => acc[part] as Json, this.#doc);
    }
    return current;
  }

  /** OpenAPI 3.0 schema -> JSON Schema: `nullable` becomes a null type, refs point into the added document. */
  #convert(node: unknown): unknown {
    if (Array.isArray(node)) return node.map((n) => this.#convert(n));
    if (typeof node !== 'object' || node === null) return node;
    const input = node as Json;
    const out: Json = {};
    for (const [key, value] of Object.entries(input)) {
      if (DROP.has(key) || key.startsWith('x-')) continue;
      if (key === '$ref' && typeof value === 'string')
        out.$ref = value.startsWith('#/') ? `${this.#base}${value}` : value;
      else if (
        (key === 'properties' || key === 'patternProperties') &&
        typeof value === 'object' &&
        value !== null
      ) {
        // Keys here are property names (a property may be called "example"), not keywords.
        out[key] = Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, this.#convert(v)]));
      } else out[key] = this.#convert(value);
    }
    if (input.nullable === true) {
      if (typeof out.type === 'string') {
        out.type = [out.type, 'null'];
        if (Array.isArray(out.enum) && !out.enum.includes(null))
          out.enum = [...(out.enum as unknown[]), null];
        return out;
      }
      return { anyOf: [out, { type: 'null' }] };
    }
    return out;
  }
}

function format(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .slice(0, 8)
    .map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`)
    .join('; ');
}
