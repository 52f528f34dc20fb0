/** The `ec2` kind: one EC2 instance per runner (src/providers/ec2). */
import type { ProviderModule } from '../provider.js';
import { ProviderSetupError } from '../provider.js';
import type { Ec2ProviderConfig } from './schema.js';
import { ec2ProviderSchema } from './schema.js';

export const ec2Module = {
  kind: 'ec2' as const,
  schema: ec2ProviderSchema,
  async setup() {
    throw new ProviderSetupError('the ec2 provider is not available in this build', {
      code: 'not-implemented',
    });
  },
} satisfies ProviderModule<Ec2ProviderConfig>;
