/**
 * AWS SDK client configuration shared by the ec2 provider and the access check: one region, an optional endpoint
 * (moto in tests) and credentials (default: the SDK's chain), few retries and bounded timeouts, so a call that
 * cannot succeed fails in seconds and the caller's own retry and backoff decide what happens next.
 */
import type { EC2ClientConfig } from '@aws-sdk/client-ec2';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';

export type AwsCredentials = NonNullable<EC2ClientConfig['credentials']>;

export interface AwsClientOptions {
  readonly region: string;
  /** http(s) URL of an AWS-compatible endpoint; default: the region's AWS endpoint. */
  readonly endpoint?: string;
  /** Default: the SDK's credential chain (environment, web identity, container, instance profile, ...). */
  readonly credentials?: AwsCredentials;
  /** Attempts per call, the first included. Default 3. */
  readonly maxAttempts?: number;
  /** HTTP(S) agents, e.g. through a proxy (src/lib/proxy.ts envProxyAgents). */
  readonly agents?: { readonly httpAgent?: unknown; readonly httpsAgent?: unknown };
}

export interface AwsClientConfig {
  region: string;
  endpoint?: string;
  credentials?: AwsCredentials;
  maxAttempts: number;
  requestHandler: {
    connectionTimeout: number;
    requestTimeout: number;
    httpAgent?: unknown;
    httpsAgent?: unknown;
  };
}

/** Every AWS call runner-fleet makes: 5 s to connect, 30 s for the answer. */
export const AWS_TIMEOUTS = { connectionTimeout: 5_000, requestTimeout: 30_000 } as const;

/** SDK client config (EC2Client, SSMClient, STSClient, ...) for these options. */
export function awsClientConfig(options: AwsClientOptions): AwsClientConfig {
  return {
    region: options.region,
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: { ...AWS_TIMEOUTS, ...options.agents },
  };
}

/** Where a scale set's AWS calls go. */
export interface AwsPlace {
  readonly region: string;
  readonly endpoint?: string;
}

/** Clients per region and endpoint, created on first use. */
export interface AwsClients {
  ec2(place: AwsPlace): EC2Client;
  ssm(place: AwsPlace): SSMClient;
  sts(place: AwsPlace): STSClient;
  /** Closes every client created. */
  destroy(): void;
}

export function createAwsClients(
  options: Pick<AwsClientOptions, 'credentials' | 'maxAttempts' | 'agents'> = {},
): AwsClients {
  const cache = new Map<string, EC2Client | SSMClient | STSClient>();
  function get<T extends EC2Client | SSMClient | STSClient>(
    kind: string,
    place: AwsPlace,
    make: (config: AwsClientConfig) => T,
  ): T {
    const key = `${kind}|${place.region}|${place.endpoint ?? ''}`;
    let client = cache.get(key) as T | undefined;
    if (!client) {
      client = make(awsClientConfig({ ...options, ...place }));
      cache.set(key, client);
    }
    return client;
  }
  return {
    ec2: (place) => get('ec2', place, (c) => new EC2Client(c)),
    ssm: (place) => get('ssm', place, (c) => new SSMClient(c)),
    sts: (place) => get('sts', place, (c) => new STSClient(c)),
    destroy() {
      for (const client of cache.values()) client.destroy();
      cache.clear();
    },
  };
}
