/**
 * Renders docs/configuration.md from the schema itself (descriptions, types, defaults), the rule list and the
 * provider schemas, so the reference cannot drift from what `validate` enforces.
 * scripts/gen-config-docs.ts writes it; a test compares the committed file with this output.
 */
import { z } from 'zod';
import { providerSchemas } from '../providers/schemas.js';
import { DEFAULT_MAX_DURATION_MS, DURATION_SYNTAX, formatDuration } from '../lib/duration.js';
import { MAX_SECRET_FILE_BYTES, formatBytes } from './read-file.js';
import { fleetConfigSchema } from './schema.js';
import { RULES } from './rules.js';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  docType?: string;
  /** A duration's upper bound, as written in fleet.yaml. */
  docMax?: string;
  minimum?: number;
  maximum?: number;
  maxItems?: number;
  maxLength?: number;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
}

const toJson = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

const code = (text: string) => `\`${text}\``;
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The bounds of a field, as the reference shows them next to its type. */
function boundsOf(node: JsonSchema): string {
  const parts: string[] = [];
  if (node.docMax !== undefined) parts.push(`at most ${node.docMax}`);
  if (node.minimum !== undefined && node.maximum !== undefined)
    parts.push(`${node.minimum} to ${node.maximum}`);
  else if (node.maximum !== undefined) parts.push(`at most ${node.maximum}`);
  if (node.maxItems !== undefined) parts.push(`at most ${node.maxItems} items`);
  if (node.maxLength !== undefined) parts.push(`at most ${node.maxLength} characters`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

function typeOf(node: JsonSchema): string {
  return baseTypeOf(node) + boundsOf(node);
}

function baseTypeOf(node: JsonSchema): string {
  if (node.docType !== undefined) return node.docType;
  if (node.const !== undefined) return code(String(node.const));
  if (node.enum !== undefined) return node.enum.map((value) => code(String(value))).join(' | ');
  const union = node.oneOf ?? node.anyOf;
  if (union !== undefined) {
    const kinds = union.map((option) => option.properties?.kind?.const).filter((kind) => kind !== undefined);
    return kinds.length === union.length
      ? `provider block: ${kinds.map((kind) => code(String(kind))).join(', ')}`
      : union.map(typeOf).join(' or ');
  }
  const type = Array.isArray(node.type) ? node.type.join(' or ') : node.type;
  if (type === 'array') return `list of ${node.items === undefined ? 'any' : typeOf(node.items)}`;
  if (type === 'object') {
    if (node.properties !== undefined) return 'mapping';
    if (typeof node.additionalProperties === 'object') return `map of ${typeOf(node.additionalProperties)}`;
    return 'mapping';
  }
  return type ?? 'any';
}

function flow(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(flow).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).map(([key, item]) => `${key}: ${flow(item)}`);
    return entries.length === 0 ? '{}' : `{ ${entries.join(', ')} }`;
  }
  return String(value);
}

function defaultOf(node: JsonSchema, required: boolean): string {
  if (required) return 'required';
  if (node.default === undefined) return '';
  if (typeof node.default === 'object' && node.default !== null && Object.keys(node.default).length === 0) {
    return '(all defaults)';
  }
  return code(flow(node.default));
}

/** One table row per field, depth first: `github.auth.app.id`, `scaleSets[].labels`, ... */
function rows(node: JsonSchema, prefix: string, out: string[]): void {
  const required = new Set(node.required ?? []);
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const description = child.description ?? child.items?.description ?? '';
    out.push(
      `| ${code(path)} | ${cell(typeOf(child))} | ${cell(defaultOf(child, required.has(key)))} | ${cell(description)} |`,
    );
    if (child.properties !== undefined) rows(child, path, out);
    if (child.items?.properties !== undefined) rows(child.items, `${path}[]`, out);
  }
}

function table(node: JsonSchema, prefix: string): string {
  const out = ['| Field | Type | Default | Description |', '| --- | --- | --- | --- |'];
  rows(node, prefix, out);
  return out.join('\n');
}

/** A config that validates, shown in the reference; a test checks that it does. */
export const DOCS_EXAMPLE = `github:
  auth:
    app: { id: 12345, privateKey: "\${file:/etc/runner-fleet/app.pem}" }
webhook: { secret: "\${env:WEBHOOK_SECRET}" }
scaleSets:
  - name: linux-small
    scope: { org: octo-org }
    labels: [linux, x64, small]
    max: 20
    provider: { kind: process, command: /opt/actions-runner/run.sh }
`;

export function renderConfigDocs(): string {
  const root = toJson(fleetConfigSchema);
  const sets = root.properties!.scaleSets!.items!;
  const top: JsonSchema = {
    properties: Object.fromEntries(Object.entries(root.properties!).filter(([key]) => key !== 'scaleSets')),
    required: root.required!.filter((key) => key !== 'scaleSets'),
  };
  const setFields: JsonSchema = {
    ...sets,
    properties: Object.fromEntries(Object.entries(sets.properties!).filter(([key]) => key !== 'provider')),
  };
  const providers = Object.entries(providerSchemas).map(([kind, schema]) => {
    const json = toJson(schema);
    return [`### \`${kind}\``, '', json.description ?? '', '', table(json, 'provider')].join('\n');
  });

  return `${[
    '# Configuration reference',
    '',
    '<!-- Generated from the schema by scripts/gen-config-docs.ts (npx tsx scripts/gen-config-docs.ts). Do not edit. -->',
    '',
    'runner-fleet reads one YAML file, usually `fleet.yaml`, validates it completely at start and turns it into one',
    'frozen, typed object. `runner-fleet validate --config fleet.yaml` runs the same checks without starting',
    'anything: it prints `ok: N scale sets` (exit 0), or every problem found, one a line (exit 2):',
    '',
    '```',
    'fleet.yaml:14:10 scaleSets[0].max: must be at least 1',
    "fleet.yaml:21:7 scaleSets[1].minidle: unknown key 'minidle' (did you mean 'minIdle'?)",
    '```',
    '',
    'A problem names the file, the 1-based line and column of the YAML node concerned (for a missing key: the',
    'mapping that lacks it; for an unknown key: the key), and the field path: dots between keys, brackets around',
    'list indices (`scaleSets[1].provider.namespace`), and quoted brackets around keys that are not plain names',
    '(`podLabels["app.kubernetes.io/name"]`). Unknown keys are errors everywhere, so a misspelt field never falls',
    'back to its default silently.',
    '',
    '## Example',
    '',
    '```yaml',
    DOCS_EXAMPLE.trimEnd(),
    '```',
    '',
    'A fuller example with `process`, `sim` and `kubernetes` scale sets is in `examples/fleet.yaml`.',
    '',
    '## Sharing settings between scale sets',
    '',
    'YAML anchors and merge keys work. Top-level keys starting with `x-` are ignored, so they can hold the shared',
    'part; keys written in the scale set override merged ones, and a problem in merged settings points at the anchor:',
    '',
    '```yaml',
    'x-linux: &linux',
    '  scope: { org: octo-org }',
    '  max: 20',
    '  provider: { kind: process, command: /opt/actions-runner/run.sh }',
    'scaleSets:',
    '  - { <<: *linux, name: linux-small, labels: [linux, small] }',
    '  - { <<: *linux, name: linux-large, labels: [linux, large], max: 5 }',
    '```',
    '',
    '## Top level',
    '',
    table(top, ''),
    '',
    '## Scale sets',
    '',
    `\`scaleSets\` (required, at least one): ${sets.description ?? root.properties!.scaleSets!.description ?? ''}`,
    '',
    table(setFields, 'scaleSets[]'),
    `| \`scaleSets[].provider\` | ${cell(typeOf(sets.properties!.provider!))} | required | ${cell(sets.properties!.provider!.description ?? '')} |`,
    '',
    '## Providers',
    '',
    'The `provider` block of a scale set starts with `kind`, which selects one of these schemas (each lives in',
    '`src/providers/<kind>/schema.ts`). An unknown kind is a problem that lists the known ones.',
    '',
    providers.join('\n\n'),
    '',
    '## Durations',
    '',
    `Durations are ${DURATION_SYNTAX}. They are converted to milliseconds at load.`,
    '',
    `Every duration has an upper bound, shown in its Type column; none exceeds ${formatDuration(DEFAULT_MAX_DURATION_MS)}, ` +
      'below the longest delay a Node.js timer holds (2^31 - 1 ms, about 24.8 days; a longer one would fire after ' +
      '1 ms and turn an interval into a busy loop). Counts and sizes (`max`, `minIdle`, `priority`, labels, ports, ' +
      '`concurrency`) are bounded the same way, and a value past a bound is a problem naming the bound.',
    '',
    '## Secret references',
    '',
    'Any string value may contain references, resolved once at load:',
    '',
    '- `${env:NAME}`: the value of environment variable `NAME`; unset or empty is a problem.',
    '- `${file:PATH}`: the contents of file `PATH`, with trailing whitespace (the final newline) removed; a relative',
    '  `PATH` is relative to the directory of the config file. An unreadable file is a problem, and so is one that',
    `  is not a regular file (\`/dev/zero\`, a FIFO, a directory) or is larger than ${formatBytes(MAX_SECRET_FILE_BYTES)}.`,
    '- `$${` stands for a literal `${`. Any other `${source:...}` is a problem.',
    '',
    'A reference may be the whole value (`secret: ${env:WEBHOOK_SECRET}`) or part of it',
    '(`url: https://${env:GHES_HOST}`). Numeric ids (`github.auth.app.id`, `installationId`) also accept a string of',
    'digits, so they can come from the environment. Problems give the position of the field, never its value: a',
    'resolved secret never appears in a message.',
    '',
    '## Derived values',
    '',
    '| Field | Value |',
    '| --- | --- |',
    '| `github.apiUrl` | `https://api.github.com` when `github.url` is github.com; `https://api.<host>` for GHE.com (`*.ghe.com`); `<url>/api/v3` otherwise (GitHub Enterprise Server). An explicit `apiUrl` wins. |',
    '| `github.ghes` | `true` when `github.url` is neither github.com nor a GHE.com host. |',
    '| `provider.url` (`sim`) | The origin of `github.apiUrl`: the simulator serves both. |',
    '| `labels` | `self-hosted` removed (it is implicit). |',
    '',
    '## Validation rules',
    '',
    'Besides the type and format of each field above:',
    '',
    ...RULES.map((rule) => `- ${rule}`),
  ].join('\n')}\n`;
}
