/**
 * The `provider:` block of a scale set: one of the kinds' schemas, selected by `kind`, derived from the provider list
 * (modules.ts).
 */
import { z } from 'zod';
import { providerModules } from './modules.js';

type Modules = typeof providerModules;
type SchemaOf<M> = M extends { readonly schema: infer S } ? S : never;
/** The schemas of a tuple of modules, as a tuple (a generic mapped type keeps the tuple's shape). */
type SchemasOf<T extends readonly unknown[]> = { readonly [K in keyof T]: SchemaOf<T[K]> };

const schemas = providerModules.map((m) => m.schema) as unknown as SchemasOf<Modules>;

export const providerSchemas = Object.fromEntries(providerModules.map((m) => [m.kind, m.schema])) as {
  readonly [M in Modules[number] as M['kind']]: SchemaOf<M>;
};

export type ProviderKind = Modules[number]['kind'];

export const providerKinds: readonly ProviderKind[] = providerModules.map((m) => m.kind);

export const providerSchema = z.discriminatedUnion('kind', schemas);

export type AnyProviderConfig = z.output<typeof providerSchema>;
