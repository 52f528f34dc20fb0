/**
 * The `sim` provider: an HTTP client of the simulator's compute API (`/_sim/instances`). Instances live in the
 * simulator's process and each hosts an emulated runner, so they outlive a controller crash as pods and VMs do.
 * Request bodies carry the registration secret: no error message ever quotes one.
 */
import { z } from 'zod';
import type { Logger } from 'pino';
import { callSignal } from '../../lib/async.js';
import { createNodeFetch, releaseAnswered } from '../../lib/node-fetch.js';
import type { Instance, InstanceSelector, InstanceSpec, Provider, ProviderContext } from '../provider.js';
import { ProviderError } from '../provider.js';
import type { SimProviderConfig } from './schema.js';

export interface SimProviderOptions {
  /** Default: a node:http fetch with kept-alive connections (lib/node-fetch.ts), closed with the provider. */
  readonly fetch?: typeof fetch;
  /** ms before a request counts as timed out (retryable). Default 10 s. */
  readonly requestTimeout?: number;
  /** ms between list polls while someone watches; 0 turns watch off. Default 1000. */
  readonly pollInterval?: number;
  readonly setInterval?: (fn: () => void, ms: number) => unknown;
  readonly clearInterval?: (handle: unknown) => void;
}

const simInstanceSchema = z.object({
  name: z.string(),
  tags: z.record(z.string(), z.string()),
  state: z.enum(['pending', 'running', 'succeeded', 'failed']),
  createdAt: z.union([z.number(), z.string()]),
  exitCode: z.number().nullish(),
  message: z.string().nullish(),
});

type SimInstance = z.infer<typeof simInstanceSchema>;

const listSchema = z.object({ instances: z.array(simInstanceSchema) });

/** Same rule as the process provider: a name is a URL path segment here, so nothing that needs escaping. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class SimProvider implements Provider {
  readonly kind = 'sim';
  readonly #base: string;
  readonly #bootDelay: number;
  readonly #fleet: string;
  readonly #scaleSet: string;
  readonly #logger: Logger;
  readonly #fetch: typeof fetch;
  readonly #ownFetch: { close(): void } | undefined;
  readonly #options: SimProviderOptions;
  readonly #watchers = new Set<(instance: Instance) => void>();
  readonly #lastState = new Map<string, Instance['state']>();
  #pollHandle: unknown = undefined;
  #polling = false;

  constructor(config: SimProviderConfig, context: ProviderContext, options: SimProviderOptions = {}) {
    if (config.url === undefined) {
      throw new ProviderError(
        `scale set ${context.scaleSet.name}: the sim provider needs the simulator url`,
        {
          code: 'invalid-provider-config',
          retryable: false,
        },
      );
    }
    this.#base = config.url.replace(/\/+$/, '');
    this.#bootDelay = config.bootDelay;
    this.#fleet = context.fleet;
    this.#scaleSet = context.scaleSet.name;
    this.#logger = context.logger.child({ provider: 'sim' });
    this.#options = options;
    if (options.fetch) this.#fetch = options.fetch;
    else {
      const own = createNodeFetch();
      this.#fetch = own;
      this.#ownFetch = own;
    }
    if ((options.pollInterval ?? 1000) > 0) {
      this.watch = (onChange) => {
        this.#watchers.add(onChange);
        this.#updatePolling();
        return () => {
          this.#watchers.delete(onChange);
          this.#updatePolling();
        };
      };
    }
  }

  async create(spec: InstanceSpec, signal: AbortSignal): Promise<Instance> {
    checkName(spec.name);
    const body = {
      name: spec.name,
      tags: { fleet: spec.fleet, scaleSet: spec.scaleSet },
      registration: spec.registration,
      bootDelayMs: this.#bootDelay,
    };
    const secret = spec.registration.mode === 'jit' ? spec.registration.jitConfig : spec.registration.token;
    const response = await this.#request('create', spec.name, '/_sim/instances', signal, {
      method: 'POST',
      body: JSON.stringify(body),
      secret,
    });
    if (response.status !== 201 && response.status !== 200)
      throw await failure('create', spec.name, response, secret);
    const raw = await parse('create', spec.name, response, simInstanceSchema);
    if (raw.tags.fleet !== spec.fleet || raw.tags.scaleSet !== spec.scaleSet) {
      throw new ProviderError(
        `sim instance ${spec.name} already exists for fleet ${raw.tags.fleet}, scale set ${raw.tags.scaleSet}`,
        { code: 'name-conflict', retryable: false },
      );
    }
    const instance = toInstance(raw);
    if (response.status === 201) this.#logger.info({ runner: spec.name }, 'sim instance created');
    return instance;
  }

  async delete(name: string, signal: AbortSignal): Promise<void> {
    checkName(name);
    const response = await this.#request('delete', name, `/_sim/instances/${name}`, signal, {
      method: 'DELETE',
    });
    if (response.status === 404 || response.ok) {
      await response.body?.cancel();
      this.#lastState.delete(name);
      return;
    }
    throw await failure('delete', name, response);
  }

  async list(selector: InstanceSelector, signal: AbortSignal): Promise<Instance[]> {
    const query = new URLSearchParams({ 'tag.fleet': selector.fleet });
    if (selector.scaleSet !== undefined) query.set('tag.scaleSet', selector.scaleSet);
    const response = await this.#request('list', selector.fleet, `/_sim/instances?${query}`, signal, {
      method: 'GET',
    });
    if (!response.ok) throw await failure('list', selector.fleet, response);
    const { instances } = await parse('list', selector.fleet, response, listSchema);
    // Ownership is checked here too: a simulator that ignored the filter must not hand us someone else's instances.
    return instances
      .filter((i) => i.tags.fleet === selector.fleet)
      .filter((i) => selector.scaleSet === undefined || i.tags.scaleSet === selector.scaleSet)
      .map(toInstance);
  }

  /** Present unless polling is turned off (pollInterval 0): then the controller's periodic resync is all. */
  readonly watch?: (onChange: (instance: Instance) => void) => () => void;

  async close(): Promise<void> {
    this.#watchers.clear();
    this.#updatePolling();
    this.#ownFetch?.close();
  }

  #updatePolling(): void {
    if (this.#watchers.size > 0 && this.#pollHandle === undefined) {
      const set = this.#options.setInterval ?? setInterval;
      this.#pollHandle = set(() => void this.#poll(), this.#options.pollInterval ?? 1000);
      (this.#pollHandle as { unref?: () => void }).unref?.();
    } else if (this.#watchers.size === 0 && this.#pollHandle !== undefined) {
      (this.#options.clearInterval ?? clearInterval)(this.#pollHandle as NodeJS.Timeout);
      this.#pollHandle = undefined;
    }
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const signal = AbortSignal.timeout(this.#options.requestTimeout ?? 10_000);
      const instances = await this.list({ fleet: this.#fleet, scaleSet: this.#scaleSet }, signal);
      const present = new Set<string>();
      for (const instance of instances) {
        present.add(instance.name);
        if (this.#lastState.get(instance.name) === instance.state) continue;
        this.#lastState.set(instance.name, instance.state);
        for (const watcher of this.#watchers) watcher(instance);
      }
      for (const name of this.#lastState.keys()) if (!present.has(name)) this.#lastState.delete(name);
    } catch (error) {
      // The next poll retries; the controller's periodic resync covers a longer outage.
      this.#logger.warn({ err: error }, 'sim instance poll failed');
    } finally {
      this.#polling = false;
    }
  }

  async #request(
    op: string,
    subject: string,
    path: string,
    signal: AbortSignal,
    init: { method: string; body?: string; secret?: string },
  ): Promise<Response> {
    // The executor's signal lives as long as the controller: released once the answer is in.
    const call = callSignal([signal], this.#options.requestTimeout ?? 10_000);
    let response: Response | undefined;
    try {
      response = await this.#fetch(`${this.#base}${path}`, {
        method: init.method,
        headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
        body: init.body,
        signal: call.signal,
      });
      return response;
    } catch (error) {
      const [code, what] = signal.aborted
        ? ['aborted', 'aborted']
        : call.timedOut
          ? ['timeout', 'timed out']
          : ['unreachable', `failed: ${scrub(error, init.secret)}`];
      // fetch's own errors (connection refused, DNS) never quote the request body, so the cause can stay.
      throw new ProviderError(`sim provider ${op} ${subject}: request to ${this.#base} ${what}`, {
        code,
        retryable: true,
        cause: code === 'unreachable' ? error : undefined,
      });
    } finally {
      // Failed or answered: an answer whose body is still streamed keeps the timeout while it is read.
      releaseAnswered(call, response);
    }
  }
}

function toInstance(raw: SimInstance): Instance {
  const createdAt = typeof raw.createdAt === 'number' ? raw.createdAt : Date.parse(raw.createdAt);
  const message =
    raw.message ??
    (raw.exitCode != null && raw.state !== 'running' ? `runner exited with code ${raw.exitCode}` : null);
  return {
    name: raw.name,
    fleet: raw.tags.fleet ?? '',
    scaleSet: raw.tags.scaleSet ?? '',
    state: raw.state,
    createdAt,
    ...(message ? { message } : {}),
  };
}

async function parse<T>(op: string, subject: string, response: Response, schema: z.ZodType<T>): Promise<T> {
  let body: unknown;
  try {
    body = await response.json();
  } catch (error) {
    throw new ProviderError(`sim provider ${op} ${subject}: response is not JSON`, {
      code: 'bad-response',
      retryable: false,
      cause: error,
    });
  }
  const result = schema.safeParse(body);
  if (!result.success) {
    const where = result.error.issues[0]?.path.join('.') || '(root)';
    throw new ProviderError(`sim provider ${op} ${subject}: unexpected response shape at ${where}`, {
      code: 'bad-response',
      retryable: false,
    });
  }
  return result.data;
}

/** 408, 429 and 5xx may pass; any other status is the request's fault and will not change on retry. */
async function failure(
  op: string,
  subject: string,
  response: Response,
  secret?: string,
): Promise<ProviderError> {
  const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
  let detail = '';
  try {
    const body = (await response.json()) as { message?: unknown };
    if (typeof body.message === 'string') detail = `: ${scrub(body.message, secret)}`;
  } catch {
    // no JSON body: the status says enough
  }
  return new ProviderError(`sim provider ${op} ${subject}: HTTP ${response.status}${detail}`, {
    code: retryable ? 'server-error' : 'rejected',
    retryable,
  });
}

/**
 * A server may echo what it was sent, and the create body holds the secret: drop the secret itself and any long
 * base64-like run (a fragment of one), and keep the text short.
 */
function scrub(value: unknown, secret?: string): string {
  let text = value instanceof Error ? value.message : String(value);
  if (secret) text = text.split(secret).join('[redacted]');
  text = text.replace(/[A-Za-z0-9+/=]{24,}/g, '[redacted]');
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

function checkName(name: string): void {
  if (!NAME.test(name)) {
    throw new ProviderError(`invalid instance name ${JSON.stringify(name.slice(0, 140))}`, {
      code: 'invalid-name',
      retryable: false,
    });
  }
}
