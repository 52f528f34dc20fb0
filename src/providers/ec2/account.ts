/**
 * The AWS account the factory's instances live in: the `<account>` of the instance ARN a runner parameter is tagged
 * with (TAG_INSTANCE_ARN, compared by IAM with the instance's ec2:SourceInstanceARN). Learned for free from the
 * `OwnerId` of a RunInstances answer or a DescribeInstances reservation (the launching account owns its instances);
 * only when neither came first (a CreateFleet launch before any list) is it asked once of STS GetCallerIdentity,
 * which needs no IAM permission. Concurrent askers share that one call; a failed call is asked again next time.
 */
import type { STSClient } from '@aws-sdk/client-sts';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { ProviderError } from '../provider.js';
import { awsError } from './errors.js';

const ACCOUNT = /^\d{12}$/;

export interface AccountSource {
  /** An account id seen in an answer (OwnerId); anything that is not 12 digits is ignored. */
  learn(account: string | undefined): void;
  /** The account: known, or asked of STS once. Throws a ProviderError when STS fails. */
  resolve(signal: AbortSignal): Promise<string>;
}

export class AccountCache implements AccountSource {
  readonly #sts: () => STSClient;
  #account: string | undefined;
  #asking: Promise<string> | undefined;

  /** `sts`: the client to ask, built only when needed. */
  constructor(sts: () => STSClient) {
    this.#sts = sts;
  }

  get known(): string | undefined {
    return this.#account;
  }

  learn(account: string | undefined): void {
    if (this.#account === undefined && account !== undefined && ACCOUNT.test(account))
      this.#account = account;
  }

  resolve(signal: AbortSignal): Promise<string> {
    if (this.#account !== undefined) return Promise.resolve(this.#account);
    this.#asking ??= this.#ask().finally(() => {
      this.#asking = undefined;
    });
    const asking = this.#asking;
    return new Promise<string>((resolve, reject) => {
      if (signal.aborted) {
        reject(new ProviderError('GetCallerIdentity aborted', { code: 'aborted', retryable: true }));
        return;
      }
      const onAbort = () =>
        reject(new ProviderError('GetCallerIdentity aborted', { code: 'aborted', retryable: true }));
      signal.addEventListener('abort', onAbort, { once: true });
      asking.then(
        (account) => {
          signal.removeEventListener('abort', onAbort);
          resolve(account);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }

  async #ask(): Promise<string> {
    const signal = AbortSignal.timeout(30_000);
    let account: string | undefined;
    try {
      account = (await this.#sts().send(new GetCallerIdentityCommand({}), { abortSignal: signal })).Account;
    } catch (error) {
      throw awsError('GetCallerIdentity', error, { subject: 'the account of the instance ARNs', signal });
    }
    if (account === undefined || !ACCOUNT.test(account)) {
      throw new ProviderError(`GetCallerIdentity answered without a 12-digit account (${String(account)})`, {
        code: 'aws-bad-response',
        retryable: true,
      });
    }
    this.learn(account);
    return account;
  }
}
