/**
 * The `ec2` provider: each runner on its own EC2 instance, its registration in an SSM SecureString only that instance
 * may read. See docs/ec2-provider.md.
 *
 * One factory serves every ec2 scale set of the controller: providers in one region (and endpoint) share the AWS
 * clients, and providers of one fleet there share one list (one DescribeInstances per resync for the whole fleet).
 */
import type { Logger } from 'pino';
import type { ProviderContext, ProviderFactory } from '../provider.js';
import type { AwsClients, AwsCredentialsOption, AwsRequestHandlerOption } from './clients.js';
import { createAwsClients } from './clients.js';
import { AccountCache } from './account.js';
import type { Ec2Provider, Ec2UserDataRenderer } from './ec2-provider.js';
import { Ec2InstanceProvider } from './ec2-provider.js';
import type { Ec2ProviderStats, FleetStateTimings } from './fleet-state.js';
import { DEFAULT_TIMINGS, FleetState, emptyStats } from './fleet-state.js';
import type { Ec2ProviderConfig } from './schema.js';
import { ec2ProviderSchema } from './schema.js';

export { ec2ProviderSchema, DEFAULT_ON_DEMAND_FAILOVER_CODES } from './schema.js';
export type { Ec2ProviderConfig, Ec2UserDataSettings } from './schema.js';
export type { Ec2Provider, Ec2UserDataInput, Ec2UserDataRenderer } from './ec2-provider.js';
export type { Ec2ProviderStats, FleetStateTimings, GcResult } from './fleet-state.js';
export { EXIT_CODE_VALUES, TAG_EXIT_CODE } from '../../aws/tags.js';

export interface Ec2ProviderFactoryOptions {
  /** Credentials for every client. Default: the SDK's default chain. */
  readonly credentials?: AwsCredentialsOption;
  /** Endpoint for every client, over each block's `endpoint` (tests). */
  readonly endpoint?: string;
  /** Region over each block's `region` (tests). */
  readonly region?: string;
  /** SDK request handler or its options (timeouts, agents). */
  readonly requestHandler?: AwsRequestHandlerOption;
  /** SDK attempts per call, the first included. Default 2. */
  readonly maxAttempts?: number;
  /** Builds the clients of one region and endpoint, for tests that wrap them. Default: createAwsClients. */
  readonly createClients?: typeof createAwsClients;
  /** Renders the start script for `imageId` launches (src/aws/user-data.ts). Without it such blocks fail prepare(). */
  readonly renderUserData?: Ec2UserDataRenderer;
  /** ms clock. Default Date.now. */
  readonly now?: () => number;
  /** List sharing, retention and parameter GC timings; see FleetStateTimings. */
  readonly timings?: Partial<FleetStateTimings>;
}

export interface Ec2ProviderFactory extends ProviderFactory<Ec2ProviderConfig> {
  readonly kind: 'ec2';
  create(config: Ec2ProviderConfig, context: ProviderContext): Ec2Provider;
  /** AWS calls of every provider this factory built. */
  readonly stats: Readonly<Ec2ProviderStats>;
  /** Resolves when no background parameter GC is running. */
  settled(): Promise<void>;
  /** Destroys the clients. Providers built by it must not be used afterwards. */
  close(): Promise<void>;
}

interface SharedClients {
  readonly clients: AwsClients;
  readonly fleets: Map<string, FleetState>;
  /** The account of the instances behind this endpoint (shared by every region of it). */
  readonly account: AccountCache;
  users: number;
}

export function createEc2ProviderFactory(options: Ec2ProviderFactoryOptions = {}): Ec2ProviderFactory {
  const stats = emptyStats();
  const now = options.now ?? Date.now;
  const timings: FleetStateTimings = { ...DEFAULT_TIMINGS, ...options.timings };
  const shared = new Map<string, SharedClients>();
  const build = options.createClients ?? createAwsClients;
  /** One account per endpoint (the credentials are the factory's): learned from answers, else one STS call. */
  const accounts = new Map<string, AccountCache>();

  function acquire(region: string, endpoint: string | undefined): SharedClients {
    const key = `${region}\u0000${endpoint ?? ''}`;
    let entry = shared.get(key);
    if (entry === undefined) {
      const clients = build(
        {
          region,
          ...(endpoint !== undefined ? { endpoint } : {}),
          ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
          ...(options.requestHandler !== undefined ? { requestHandler: options.requestHandler } : {}),
          ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
        },
        stats,
      );
      let account = accounts.get(endpoint ?? '');
      if (account === undefined) {
        account = new AccountCache(() => clients.sts());
        accounts.set(endpoint ?? '', account);
      }
      entry = { clients, fleets: new Map(), account, users: 0 };
      shared.set(key, entry);
    }
    entry.users++;
    return entry;
  }

  function fleetStateOf(entry: SharedClients, fleet: string, logger: Logger): FleetState {
    let state = entry.fleets.get(fleet);
    if (state === undefined) {
      state = new FleetState({
        fleet,
        ec2: entry.clients.ec2,
        ssm: entry.clients.ssm,
        stats,
        logger: logger.child({ provider: 'ec2' }),
        now,
        timings,
        onOwner: (owner) => entry.account.learn(owner),
      });
      entry.fleets.set(fleet, state);
    }
    return state;
  }

  return {
    kind: 'ec2',
    schema: ec2ProviderSchema,
    stats,
    create(config, context) {
      const region = options.region ?? config.region;
      const endpoint = options.endpoint ?? config.endpoint;
      const entry = acquire(region, endpoint);
      let released = false;
      return new Ec2InstanceProvider({
        config,
        context,
        ec2: entry.clients.ec2,
        ssm: entry.clients.ssm,
        stats,
        fleetState: (fleet) => fleetStateOf(entry, fleet, context.logger),
        account: entry.account,
        ...(options.renderUserData !== undefined ? { renderUserData: options.renderUserData } : {}),
        now,
        release: () => {
          if (released) return;
          released = true;
          entry.users--;
        },
      });
    },
    async settled() {
      await Promise.all(
        [...shared.values()].flatMap((entry) => [...entry.fleets.values()].map((state) => state.settled())),
      );
    },
    async close() {
      await this.settled();
      for (const entry of shared.values()) entry.clients.destroy();
      shared.clear();
    },
  };
}

export const ec2ProviderFactory = createEc2ProviderFactory();
