/**
 * The `ec2` kind: one EC2 instance per runner (src/providers/ec2). One factory serves every ec2 scale set, so they
 * share AWS clients and one DescribeInstances per resync; `imageId` launches get runner-fleet's start script as user
 * data (user-data.ts). `--aws-endpoint` (or a block's `endpoint`) points the clients at another endpoint, e.g. a local
 * moto server; credentials are the command environment's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
 * else the AWS SDK's default chain. Calls go through HTTPS_PROXY (HTTP_PROXY for an http:// endpoint) unless NO_PROXY
 * exempts the endpoint's host: the AWS SDK ignores those variables, so its agents are given the proxy.
 *
 * With `checkAccess` (start), setup runs the AWS access check (access-check.ts: identity, launch templates, subnets,
 * SSM prefixes writable) and refuses with every failing line; `doctor` returns the same lines.
 */
import type { AwsCredentials } from '../../aws/clients.js';
import type { FleetConfig } from '../../core/fleet-config.js';
import { envProxyAgents } from '../../lib/proxy.js';
import type { ProviderModule, ProviderSetupOptions } from '../provider.js';
import { ProviderSetupError } from '../provider.js';
import type { Ec2AccessReport } from './access-check.js';
import type { Ec2ProviderConfig } from './schema.js';
import { ec2ProviderSchema } from './schema.js';

/** The fleet as the access check sees it: `--aws-endpoint` stands for every block's endpoint, as for the providers. */
function withEndpoint(
  fleet: FleetConfig,
  endpoint: string | undefined,
): Pick<FleetConfig, 'name' | 'scaleSets'> {
  if (endpoint === undefined) return fleet;
  return {
    name: fleet.name,
    scaleSets: fleet.scaleSets.map((set) =>
      set.provider.kind === 'ec2' ? { ...set, provider: { ...set.provider, endpoint } } : set,
    ),
  };
}

/**
 * Static credentials of the command's environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN),
 * which the SDK's chain would take first anyway; without them, undefined: the rest of the chain (web identity,
 * profiles, container and instance roles).
 */
export function credentialsOf(env: ProviderSetupOptions['env']): AwsCredentials | undefined {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  const sessionToken = env.AWS_SESSION_TOKEN;
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

/** HTTP(S) agents through the environment's proxy, or undefined without one. */
function proxyAgents(env: ProviderSetupOptions['env']) {
  return envProxyAgents(env, { keepAlive: true, maxSockets: 50 });
}

async function accessReport(options: ProviderSetupOptions): Promise<Ec2AccessReport> {
  const [{ checkEc2Access }, { createAwsClients }] = await Promise.all([
    import('./access-check.js'),
    import('../../aws/clients.js'),
  ]);
  const credentials = credentialsOf(options.env);
  const agents = proxyAgents(options.env);
  const clients = createAwsClients({
    ...(credentials !== undefined ? { credentials } : {}),
    ...(agents !== undefined ? { agents } : {}),
  });
  try {
    return await checkEc2Access(
      withEndpoint(options.fleet, options.connection.awsEndpoint),
      clients,
      options.signal,
    );
  } finally {
    clients.destroy();
  }
}

export const ec2Module = {
  kind: 'ec2' as const,
  schema: ec2ProviderSchema,
  async setup(options) {
    if (options.checkAccess) {
      const report = await accessReport(options);
      if (!report.ok) {
        const failing = report.lines.filter((line) => !line.ok).map((line) => `  - ${line.text}`);
        throw new ProviderSetupError(
          `refusing to start: the AWS access check failed.\n${failing.join('\n')}\n` +
            'Run `runner-fleet doctor` for every check; `runner-fleet aws-policy` prints the policies (docs/aws.md).',
          { code: 'aws-access-check-failed' },
        );
      }
      for (const line of report.lines) options.logger.info({ check: line.text }, 'AWS access check passed');
    }
    const [{ createEc2ProviderFactory }, { renderEc2UserData }, { DEFAULT_REQUEST_HANDLER }] =
      await Promise.all([import('./index.js'), import('./user-data.js'), import('./clients.js')]);
    const credentials = credentialsOf(options.env);
    const agents = proxyAgents(options.env);
    return createEc2ProviderFactory({
      renderUserData: renderEc2UserData,
      ...(agents !== undefined ? { requestHandler: { ...DEFAULT_REQUEST_HANDLER, ...agents } } : {}),
      ...(credentials !== undefined ? { credentials } : {}),
      ...(options.connection.awsEndpoint !== undefined ? { endpoint: options.connection.awsEndpoint } : {}),
    });
  },
  async doctor(options) {
    const report = await accessReport(options);
    return { ok: report.ok, lines: [...report.lines] };
  },
} satisfies ProviderModule<Ec2ProviderConfig>;
