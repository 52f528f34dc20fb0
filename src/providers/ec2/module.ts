/**
 * The `ec2` kind: one EC2 instance per runner (src/providers/ec2). One factory serves every ec2 scale set, so they
 * share AWS clients and one DescribeInstances per resync. `--aws-endpoint` (or a block's `endpoint`) points the
 * clients at another endpoint, e.g. a local moto server; credentials come from the AWS SDK's default chain; calls go
 * through HTTPS_PROXY (HTTP_PROXY for an http:// endpoint) unless NO_PROXY exempts the endpoint's host.
 */
import { envProxyAgents } from '../../lib/proxy.js';
import type { ProviderModule } from '../provider.js';
import type { Ec2ProviderConfig } from './schema.js';
import { ec2ProviderSchema } from './schema.js';

export const ec2Module = {
  kind: 'ec2' as const,
  schema: ec2ProviderSchema,
  async setup({ connection, env }) {
    const { createEc2ProviderFactory } = await import('./index.js');
    const { DEFAULT_REQUEST_HANDLER } = await import('./clients.js');
    // The AWS SDK ignores HTTPS_PROXY: its agents are given the proxy (NO_PROXY exempts hosts, e.g. VPC endpoints).
    const agents = envProxyAgents(env, { keepAlive: true, maxSockets: 50 });
    return createEc2ProviderFactory({
      ...(connection.awsEndpoint !== undefined ? { endpoint: connection.awsEndpoint } : {}),
      ...(agents !== undefined ? { requestHandler: { ...DEFAULT_REQUEST_HANDLER, ...agents } } : {}),
    });
  },
} satisfies ProviderModule<Ec2ProviderConfig>;
