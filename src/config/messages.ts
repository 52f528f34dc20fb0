/**
 * Wording of schema problems. zod's defaults speak of JavaScript ("expected object, received undefined"); a
 * fleet.yaml author thinks in YAML ("required", "expected a mapping, got a list"). Messages never quote a value,
 * only its kind, so a secret cannot end up in one.
 */
import { z } from 'zod';
import { fleetConfigSchema } from './schema.js';

const KIND_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  null: 'an empty value',
};

function kindOf(value: unknown): string {
  if (value === null) return KIND_NAMES.null!;
  if (Array.isArray(value)) return KIND_NAMES.array!;
  if (typeof value === 'number' && !Number.isInteger(value)) return 'a fraction';
  return KIND_NAMES[typeof value] ?? typeof value;
}

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;

/** Per-parse zod error map. Messages given in the schema take precedence over these. */
export function errorMap(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined
        ? 'required'
        : `expected ${KIND_NAMES[issue.expected] ?? issue.expected}, got ${kindOf(issue.input)}`;
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'array') return `needs at least ${plural(min, 'item')}`;
      if (issue.origin === 'string')
        return min === 1 ? 'must not be empty' : `must be at least ${min} characters`;
      return issue.inclusive === false ? `must be greater than ${min}` : `must be at least ${min}`;
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'array') return `at most ${plural(max, 'item')}`;
      if (issue.origin === 'string') return `must be at most ${max} characters`;
      return issue.inclusive === false ? `must be less than ${max}` : `must be at most ${max}`;
    }
    case 'invalid_value':
      return issue.values.length === 1
        ? `expected ${String(issue.values[0])}`
        : `expected one of: ${issue.values.map(String).join(', ')}`;
    case 'invalid_union': {
      if (issue.note !== 'No matching discriminator' || issue.discriminator === undefined) return undefined;
      const input = issue.input as Record<string, unknown> | undefined;
      const given = input?.[issue.discriminator];
      const known = (issue.options as unknown[] | undefined)?.map(String).join(', ') ?? '';
      if (given === undefined) return `required; one of: ${known}`;
      return typeof given === 'string'
        ? `unknown ${issue.discriminator} '${given}'; known ${issue.discriminator}s: ${known}`
        : `expected one of: ${known}`;
    }
    default:
      return undefined;
  }
}

type JsonSchema = {
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  const?: unknown;
};

let inputSchema: JsonSchema | undefined;

/** The schema as JSON Schema (input side), used to name the keys a mapping accepts. */
export function fleetJsonSchema(): JsonSchema {
  inputSchema ??= z.toJSONSchema(fleetConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return inputSchema;
}

/** For a union of mappings (provider blocks), the branch whose `kind` matches the document. */
function branch(node: JsonSchema | undefined, raw: unknown): JsonSchema | undefined {
  const options = node?.anyOf ?? node?.oneOf;
  if (options === undefined) return node;
  const kind = (raw as Record<string, unknown> | undefined)?.kind;
  return (
    options.find((option) => option.properties?.kind?.const === kind) ?? options.find((o) => o.properties)
  );
}

/** The keys the mapping at `path` accepts, or none when the path leads outside the schema. */
export function knownKeysAt(path: readonly PropertyKey[], raw: unknown): string[] {
  let node: JsonSchema | undefined = fleetJsonSchema();
  let value = raw;
  for (const segment of path) {
    node = branch(node, value);
    value = (value as Record<PropertyKey, unknown> | undefined)?.[segment];
    if (typeof segment === 'number') node = node?.items;
    else {
      const extra: JsonSchema | boolean | undefined = node?.additionalProperties;
      node = node?.properties?.[String(segment)] ?? (typeof extra === 'object' ? extra : undefined);
    }
  }
  return Object.keys(branch(node, value)?.properties ?? {});
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** `unknown key 'minidle' (did you mean 'minIdle'?)`, or the list of accepted keys when none is close. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const scored = known
    .map((candidate) => ({
      candidate,
      score: candidate.toLowerCase() === key.toLowerCase() ? 0 : distance(key, candidate),
    }))
    .sort((a, b) => a.score - b.score);
  const best = scored[0];
  if (best !== undefined && best.score <= Math.min(2, Math.floor(key.length / 3))) {
    return `unknown key '${key}' (did you mean '${best.candidate}'?)`;
  }
  return known.length > 0
    ? `unknown key '${key}'; expected one of: ${known.join(', ')}`
    : `unknown key '${key}'`;
}
