/**
 * The `ec2` kind: one EC2 instance per runner (src/providers/ec2). One factory serves every ec2 scale set, so they
 * share AWS clients and one DescribeInstances per resync. `--aws-endpoint` (or a block's `endpoint`) points the
 * clients at another endpoint, e.g. a local moto server; credentials come from the AWS SDK's default chain.
 */
import type { ProviderModule } from '../provider.js';
import type { Ec2ProviderConfig } from './schema.js';
import { ec2ProviderSchema } from './schema.js';

export const ec2Module = {
  kind: 'ec2' as const,
  schema: ec2ProviderSchema,
  async setup({ connection }) {
    const { createEc2ProviderFactory } = await import('./index.js');
    return createEc2ProviderFactory({
      ...(connection.awsEndpoint !== undefined ? { endpoint: connection.awsEndpoint } : {}),
    });
  },
} satisfies ProviderModule<Ec2ProviderConfig>;
