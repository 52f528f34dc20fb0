/**
 * Request body validation with GitHub's 422 messages (`Invalid request.\n\n"name" wasn't supplied.`, `For
 * 'properties/labels', "x" is not an array.`), for the few request bodies the simulator accepts.
 */
import { invalidRequest } from './errors.js';

export interface FieldSpec {
  readonly type: 'string' | 'integer' | 'boolean' | 'string[]' | 'integer[]';
  readonly required?: boolean;
  readonly minItems?: number;
  readonly maxItems?: number;
}

const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

function typeError(field: string, value: unknown, expected: string): string {
  return `For 'properties/${field}', ${show(value)} is not ${expected}.`;
}

/** Returns the body as a record when it fits `spec`; throws GitHub's 422 otherwise. Unknown fields are ignored. */
export function validateBody(
  body: unknown,
  spec: Record<string, FieldSpec>,
  docs?: string,
): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidRequest(`${show(body)} is not an object.`, docs);
  }
  const record = body as Record<string, unknown>;
  const missing = Object.entries(spec)
    .filter(([name, f]) => f.required && record[name] === undefined)
    .map(([name]) => `"${name}"`);
  if (missing.length === 1) throw invalidRequest(`${missing[0]} wasn't supplied.`, docs);
  if (missing.length > 1) throw invalidRequest(`${missing.join(', ')} weren't supplied.`, docs);
  for (const [name, f] of Object.entries(spec)) {
    const value = record[name];
    if (value === undefined) continue;
    switch (f.type) {
      case 'string':
        if (typeof value !== 'string') throw invalidRequest(typeError(name, value, 'a string'), docs);
        break;
      case 'integer':
        if (typeof value !== 'number' || !Number.isInteger(value))
          throw invalidRequest(typeError(name, value, 'an integer'), docs);
        break;
      case 'boolean':
        if (typeof value !== 'boolean') throw invalidRequest(typeError(name, value, 'a boolean'), docs);
        break;
      case 'string[]':
      case 'integer[]': {
        if (!Array.isArray(value)) throw invalidRequest(typeError(name, value, 'an array'), docs);
        const itemType = f.type === 'string[]' ? 'string' : 'integer';
        for (const item of value) {
          const ok =
            itemType === 'string'
              ? typeof item === 'string'
              : typeof item === 'number' && Number.isInteger(item);
          if (!ok)
            throw invalidRequest(
              `For 'items', ${show(item)} is not ${itemType === 'string' ? 'a string' : 'an integer'}.`,
              docs,
            );
        }
        if (f.minItems !== undefined && value.length < f.minItems) {
          throw invalidRequest(
            `For 'properties/${name}', ${show(value)} has fewer than ${f.minItems} item${f.minItems === 1 ? '' : 's'}.`,
            docs,
          );
        }
        if (f.maxItems !== undefined && value.length > f.maxItems) {
          throw invalidRequest(
            `For 'properties/${name}', the array has more than ${f.maxItems} items.`,
            docs,
          );
        }
        break;
      }
    }
  }
  return record;
}
