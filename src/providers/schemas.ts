/**
 * Provider kind -> zod schema of its `provider:` block. The fleet schema dispatches on `kind` through this map, so
 * adding a provider means adding its schema here (and its factory to the registry).
 */
import { z } from 'zod';
import { ec2ProviderSchema } from './ec2/schema.js';
import { kubernetesProviderSchema } from './kubernetes/schema.js';
import { processProviderSchema } from './process/schema.js';
import { simProviderSchema } from './sim/schema.js';

export const providerSchemas = {
  process: processProviderSchema,
  sim: simProviderSchema,
  kubernetes: kubernetesProviderSchema,
  ec2: ec2ProviderSchema,
} as const;

export type ProviderKind = keyof typeof providerSchemas;

export const providerKinds = Object.keys(providerSchemas) as ProviderKind[];

/** The `provider:` block of a scale set: one of the provider schemas, selected by `kind`. */
export const providerSchema = z.discriminatedUnion('kind', [
  providerSchemas.process,
  providerSchemas.sim,
  providerSchemas.kubernetes,
  providerSchemas.ec2,
]);

export type AnyProviderConfig = z.output<typeof providerSchema>;
