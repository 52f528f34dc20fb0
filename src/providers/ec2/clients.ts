/**
 * The EC2 and SSM clients of one region and endpoint, built once per factory and shared by its providers, each call
 * counted by operation (the benchmark's "AWS calls per runner" and "DescribeInstances per resync" come from here).
 *
 * Retries: the SDK retries a throttled or failed call at most `maxAttempts - 1` times (default 2 attempts in all);
 * the reconciler retries too, on its next pass, so a long SDK retry chain would only hold a slot of the executor.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import type { EC2ClientConfig } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentials } from '../../aws/clients.js';
import { AWS_TIMEOUTS, awsClientConfig } from '../../aws/clients.js';
import { awsCode } from './errors.js';

export type AwsCredentialsOption = AwsCredentials;
export type AwsRequestHandlerOption = EC2ClientConfig['requestHandler'];

export interface AwsClientSettings {
  readonly region: string;
  /** Overrides both services' endpoints (moto in tests). */
  readonly endpoint?: string;
  /** Default: the SDK's default credential chain (environment, web identity, SSO, instance/container role). */
  readonly credentials?: AwsCredentialsOption;
  /** An SDK request handler, or its options. Default: Node's, 5 s to connect, 30 s per request. */
  readonly requestHandler?: AwsRequestHandlerOption;
  /** Attempts per call, the first included. Default 2. */
  readonly maxAttempts?: number;
}

/** AWS calls by operation. All providers of one factory share one object. */
export interface AwsCallStats {
  /** Calls by operation (`RunInstances`), as made by runner-fleet: SDK retries not included. */
  readonly calls: Record<string, number>;
  /** HTTP requests by operation, SDK retries included. */
  readonly requests: Record<string, number>;
  /** Failed calls by `Operation:ErrorCode`. */
  readonly errors: Record<string, number>;
}

export function emptyCallStats(): AwsCallStats {
  return { calls: {}, requests: {}, errors: {} };
}

export interface AwsClients {
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  /** GetCallerIdentity only (the account of instance ARNs); built on first use. */
  sts(): STSClient;
  destroy(): void;
}

/** Node's handler with bounded timeouts; kept-alive agents unless given others (a proxy's, see module.ts). */
export const DEFAULT_REQUEST_HANDLER = {
  ...AWS_TIMEOUTS,
  throwOnRequestTimeout: true,
  httpAgent: { keepAlive: true, maxSockets: 50 },
  httpsAgent: { keepAlive: true, maxSockets: 50 },
};

const bump = (map: Record<string, number>, key: string): void => {
  map[key] = (map[key] ?? 0) + 1;
};

function operationOf(context: { commandName?: string }): string {
  return (context.commandName ?? 'Unknown').replace(/Command$/, '');
}

function count(client: EC2Client | SSMClient | STSClient, stats: AwsCallStats): void {
  const calls =
    <A, R>(next: (args: A) => Promise<R>, context: { commandName?: string }) =>
    async (args: A): Promise<R> => {
      const operation = operationOf(context);
      bump(stats.calls, operation);
      try {
        return await next(args);
      } catch (error) {
        bump(stats.errors, `${operation}:${awsCode(error) ?? 'Unknown'}`);
        throw error;
      }
    };
  // The deserialize step runs inside the retry loop: once per HTTP request.
  const requests =
    <A, R>(next: (args: A) => Promise<R>, context: { commandName?: string }) =>
    (args: A): Promise<R> => {
      bump(stats.requests, operationOf(context));
      return next(args);
    };
  // The three clients' middleware stacks differ only in their input and output types.
  const stack = client.middlewareStack as unknown as {
    add(middleware: unknown, options: { step: string; name: string }): void;
  };
  stack.add(calls, { step: 'initialize', name: 'runnerFleetCallCounter' });
  stack.add(requests, { step: 'deserialize', name: 'runnerFleetRequestCounter' });
}

export function createAwsClients(settings: AwsClientSettings, stats: AwsCallStats): AwsClients {
  const config = {
    ...awsClientConfig({
      region: settings.region,
      ...(settings.endpoint !== undefined ? { endpoint: settings.endpoint } : {}),
      ...(settings.credentials !== undefined ? { credentials: settings.credentials } : {}),
      maxAttempts: settings.maxAttempts ?? 2,
    }),
    retryMode: 'standard',
    requestHandler: settings.requestHandler ?? DEFAULT_REQUEST_HANDLER,
  };
  const ec2 = new EC2Client(config);
  const ssm = new SSMClient(config);
  count(ec2, stats);
  count(ssm, stats);
  let sts: STSClient | undefined;
  return {
    ec2,
    ssm,
    sts() {
      if (sts === undefined) {
        sts = new STSClient(config);
        count(sts, stats);
      }
      return sts;
    },
    destroy() {
      ec2.destroy();
      ssm.destroy();
      sts?.destroy();
    },
  };
}
