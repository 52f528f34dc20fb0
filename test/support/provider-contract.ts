/**
 * The contract every provider passes: a vitest suite, run from each provider's own test file against a real peer
 * (real child processes, the simulator's compute API, a real Kubernetes API server, moto). It checks what the
 * reconciler relies on: idempotent create and delete, ownership by fleet and scale set, reported failures, state
 * that follows the hosted runner, and secrets that never come back out.
 */
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Instance, InstanceSelector, InstanceSpec, Provider } from '../../src/providers/provider.js';
import { ProviderError } from '../../src/providers/provider.js';

/** hold: the runner keeps running until deleted; success: it exits 0 soon; failure: it exits non-zero soon. */
export type ContractOutcome = 'hold' | 'success' | 'failure';

export interface ContractSpecOptions {
  readonly outcome?: ContractOutcome;
  readonly mode?: 'jit' | 'token';
}

export interface ContractFixture {
  readonly provider: Provider;
  /**
   * A spec whose hosted runner behaves as `outcome` says (default hold) with a registration of `mode` (default jit).
   * Its secret must be unique to the spec: the suite looks for it in everything the provider returns.
   */
  makeSpec(name: string, options?: ContractSpecOptions): InstanceSpec | Promise<InstanceSpec>;
  /** A provider of the same kind whose create() fails: an unreachable endpoint, a missing command, bad credentials. */
  readonly failingProvider: Provider;
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  /** ms for a runner to reach a final state. Default 30 s. */
  readonly stateTimeoutMs?: number;
  /**
   * Whether the provider pushes state changes (`watch`). Default true. A provider that declares false is checked to
   * have no `watch` (the controller then learns states from list() at each resync), instead of a skipped test.
   */
  readonly watch?: boolean;
}

const FINAL = new Set<Instance['state']>(['succeeded', 'failed']);

function secretOf(spec: InstanceSpec): string {
  return spec.registration.mode === 'jit' ? spec.registration.jitConfig : spec.registration.token;
}

function expectNoSecret(value: unknown, secret: string): void {
  const text = typeof value === 'string' ? value : inspect(value, { depth: 8, showHidden: true });
  expect(secret.length).toBeGreaterThan(0);
  expect(text.includes(secret), 'the registration secret leaked').toBe(false);
}

function signal(): AbortSignal {
  return AbortSignal.timeout(60_000);
}

export function runProviderContract(
  name: string,
  setup: () => Promise<ContractFixture>,
  options: ContractOptions = {},
): void {
  const stateTimeout = options.stateTimeoutMs ?? 30_000;
  const testTimeout = stateTimeout + 30_000;

  describe(`provider contract: ${name}`, () => {
    let fixture: ContractFixture;
    let provider: Provider;
    const created: string[] = [];
    let counter = 0;
    const unique = (label: string) => `ct-${label}-${process.pid}-${Date.now().toString(36)}-${counter++}`;

    async function make(label: string, opts?: ContractSpecOptions): Promise<InstanceSpec> {
      const spec = await fixture.makeSpec(unique(label), opts);
      created.push(spec.name);
      return spec;
    }

    async function listed(selector: InstanceSelector, instanceName: string): Promise<Instance[]> {
      return (await provider.list(selector, signal())).filter((i) => i.name === instanceName);
    }

    async function waitForState(spec: InstanceSpec, accept: (i: Instance) => boolean): Promise<Instance> {
      const deadline = Date.now() + stateTimeout;
      let last: Instance | undefined;
      while (Date.now() < deadline) {
        [last] = await listed({ fleet: spec.fleet, scaleSet: spec.scaleSet }, spec.name);
        if (last !== undefined && accept(last)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(
        `instance ${spec.name} did not reach the expected state; last seen: ${JSON.stringify(last)}`,
      );
    }

    beforeAll(async () => {
      fixture = await setup();
      provider = fixture.provider;
    });

    afterEach(async () => {
      const names = created.splice(0);
      await Promise.all(names.map((n) => provider.delete(n, signal())));
    });

    afterAll(async () => {
      await fixture?.cleanup();
    });

    it(
      "create returns an instance with the spec's name, fleet and scale set",
      async () => {
        const spec = await make('create');
        const instance = await provider.create(spec, signal());
        expect(instance).toMatchObject({ name: spec.name, fleet: spec.fleet, scaleSet: spec.scaleSet });
        expect(['pending', 'running']).toContain(instance.state);
        expect(typeof instance.createdAt).toBe('number');
        expect(Number.isFinite(instance.createdAt)).toBe(true);
        expect(await listed({ fleet: spec.fleet }, spec.name)).toHaveLength(1);
      },
      testTimeout,
    );

    it(
      'create is idempotent on the name, one after the other and at the same time',
      async () => {
        const spec = await make('idem');
        const first = await provider.create(spec, signal());
        const second = await provider.create(spec, signal());
        expect(second.name).toBe(first.name);
        expect(second.createdAt).toBe(first.createdAt);
        expect(await listed({ fleet: spec.fleet }, spec.name)).toHaveLength(1);

        const racing = await make('race');
        const both = await Promise.all([
          provider.create(racing, signal()),
          provider.create(racing, signal()),
        ]);
        expect(both.map((i) => i.name)).toEqual([racing.name, racing.name]);
        expect(await listed({ fleet: racing.fleet }, racing.name)).toHaveLength(1);
      },
      testTimeout,
    );

    it(
      'list by fleet and by fleet and scale set returns only owned instances',
      async () => {
        const base = await make('own-a');
        const otherFleet = `${base.fleet}-other-${counter}`;
        const otherSet = `${base.scaleSet}-other`;
        const a = base;
        const b = { ...(await make('own-b')), scaleSet: otherSet };
        const c = { ...(await make('own-c')), fleet: otherFleet };
        for (const spec of [a, b, c]) await provider.create(spec, signal());

        const names = (instances: Instance[]) =>
          instances.map((i) => i.name).filter((n) => created.includes(n));
        const byFleet = await provider.list({ fleet: a.fleet }, signal());
        expect(byFleet.every((i) => i.fleet === a.fleet)).toBe(true);
        expect(names(byFleet).sort()).toEqual([a.name, b.name].sort());

        const bySet = await provider.list({ fleet: a.fleet, scaleSet: a.scaleSet }, signal());
        expect(bySet.every((i) => i.fleet === a.fleet && i.scaleSet === a.scaleSet)).toBe(true);
        expect(names(bySet)).toEqual([a.name]);

        const other = await provider.list({ fleet: otherFleet }, signal());
        expect(other.map((i) => i.name)).toEqual([c.name]);
        expect(other[0]).toMatchObject({ fleet: otherFleet, scaleSet: c.scaleSet });
        expect(await provider.list({ fleet: otherFleet, scaleSet: otherSet }, signal())).toEqual([]);
      },
      testTimeout,
    );

    it(
      'delete is idempotent, and deleting a name that was never created succeeds',
      async () => {
        const spec = await make('delete');
        await provider.create(spec, signal());
        await provider.delete(spec.name, signal());
        expect(await listed({ fleet: spec.fleet }, spec.name)).toEqual([]);
        await provider.delete(spec.name, signal());
        await provider.delete(unique('never'), signal());
        expect(await listed({ fleet: spec.fleet }, spec.name)).toEqual([]);
      },
      testTimeout,
    );

    it(
      'a name that cannot be an instance name is refused with a fatal ProviderError',
      async () => {
        const spec = { ...(await make('badname')), name: 'bad/name' };
        const error = await provider.create(spec, signal()).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ProviderError);
        expect((error as ProviderError).retryable).toBe(false);
        expectNoSecret(error, secretOf(spec));
      },
      testTimeout,
    );

    it(
      'a failed create is reported as a ProviderError with a code and retryable, never carrying the secret',
      async () => {
        for (const mode of ['jit', 'token'] as const) {
          const spec = await make(`fail-${mode}`, { mode });
          const error = await fixture.failingProvider.create(spec, signal()).then(
            (i) => i,
            (e: unknown) => e,
          );
          expect(error, `create on the failing provider resolved: ${inspect(error)}`).toBeInstanceOf(
            ProviderError,
          );
          const providerError = error as ProviderError;
          expect(providerError.code).toMatch(/^[a-z][a-z0-9-]*$/);
          expect(typeof providerError.retryable).toBe('boolean');
          expectNoSecret(providerError.message, secretOf(spec));
          expectNoSecret(providerError, secretOf(spec));
        }
      },
      testTimeout,
    );

    it(
      'state goes from pending or running to succeeded when the runner exits 0, in both registration modes',
      async () => {
        const specs = [await make('succeed-jit', { outcome: 'success' })];
        specs.push(await make('succeed-token', { outcome: 'success', mode: 'token' }));
        for (const spec of specs) {
          const instance = await provider.create(spec, signal());
          expect(['pending', 'running']).toContain(instance.state);
        }
        for (const spec of specs) {
          const done = await waitForState(spec, (i) => FINAL.has(i.state));
          expect(done.state, JSON.stringify(done)).toBe('succeeded');
        }
      },
      testTimeout * 2,
    );

    it(
      'state goes to failed, with a message, when the runner fails',
      async () => {
        const spec = await make('fail', { outcome: 'failure' });
        const instance = await provider.create(spec, signal());
        expect(['pending', 'running', 'failed']).toContain(instance.state);
        const done = await waitForState(spec, (i) => FINAL.has(i.state));
        expect(done.state, JSON.stringify(done)).toBe('failed');
        expect(done.message).toBeTruthy();
        expectNoSecret(done, secretOf(spec));
      },
      testTimeout,
    );

    if (options.watch === false) {
      it('has no watch: states come from list() at each resync', () => {
        expect(provider.watch).toBeUndefined();
      });
    } else
      it(
        'watch reports state changes until unsubscribed',
        async () => {
          const watch = provider.watch?.bind(provider);
          expect(watch, 'the provider declares watch (pass { watch: false } if it has none)').toBeDefined();
          const seen: Instance[] = [];
          const stop = watch!((i) => seen.push(i));
          const spec = await make('watch', { outcome: 'success' });
          try {
            await provider.create(spec, signal());
            const deadline = Date.now() + stateTimeout;
            while (
              !seen.some((i) => i.name === spec.name && i.state === 'succeeded') &&
              Date.now() < deadline
            ) {
              await new Promise((r) => setTimeout(r, 50));
            }
          } finally {
            stop();
          }
          const mine = seen.filter((i) => i.name === spec.name);
          expect(mine.map((i) => i.state)).toContain('succeeded');
          for (const i of mine) expect(i).toMatchObject({ fleet: spec.fleet, scaleSet: spec.scaleSet });
          expectNoSecret(seen, secretOf(spec));

          const after = await make('unwatched', { outcome: 'success' });
          await provider.create(after, signal());
          await waitForState(after, (i) => FINAL.has(i.state));
          await new Promise((r) => setTimeout(r, 200));
          expect(seen.filter((i) => i.name === after.name)).toEqual([]);
        },
        testTimeout * 2,
      );

    it(
      'the secret never appears in what create() and list() return, in both registration modes',
      async () => {
        for (const mode of ['jit', 'token'] as const) {
          const spec = await make(`secret-${mode}`, { mode });
          const instance = await provider.create(spec, signal());
          expectNoSecret(instance, secretOf(spec));
          const running = await waitForState(spec, (i) => i.state !== 'pending');
          expect(running.state, JSON.stringify(running)).toBe('running');
          expectNoSecret(await provider.list({ fleet: spec.fleet }, signal()), secretOf(spec));
          expectNoSecret(await provider.create(spec, signal()), secretOf(spec));
        }
      },
      testTimeout * 2,
    );
  });
}
