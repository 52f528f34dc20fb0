import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { FleetConfig, ProviderConfig, ScaleSetConfig } from '../core/fleet-config.js';
import type { Provider, ProviderFactory } from './provider.js';
import { ProviderError } from './provider.js';
import { createProviderRegistry } from './registry.js';
import type { FactorySource } from './registry.js';
import { simProviderFactory } from './sim/index.js';
import { processProviderSchema } from './process/schema.js';
import { simProviderSchema } from './sim/schema.js';

const context = { fleet: 'fleet', logger: pino({ level: 'silent' }) };

/** A registry whose kinds are set up as `start` sets them up, for a fleet of these scale sets. */
function registry(overrides?: Readonly<Record<string, FactorySource>>, scaleSets: ScaleSetConfig[] = []) {
  return createProviderRegistry({
    ...(overrides ? { overrides } : {}),
    setup: {
      fleet: { name: 'fleet', scaleSets } as unknown as FleetConfig,
      env: { PATH: '/usr/bin:/bin' },
      connection: {},
      checkAccess: false,
      logger: context.logger,
      signal: AbortSignal.timeout(10_000),
    },
  });
}

function scaleSet(provider: ProviderConfig): ScaleSetConfig {
  return {
    name: 'linux-small',
    scope: { org: 'octo-org' },
    runnerGroup: 'Default',
    labels: ['linux'],
    minIdle: 0,
    max: 5,
    ephemeral: true,
    registration: 'jit',
    priority: 0,
    bootstrapTimeout: 600_000,
    idleTimeout: 300_000,
    provider,
  };
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

describe('provider registry', () => {
  it('knows the built-in kinds and builds their providers from a scale set', async () => {
    const built = registry();
    expect(built.kinds).toEqual(['ec2', 'kubernetes', 'process', 'sim']);
    const processProvider = await built.providerFor(
      scaleSet({ kind: 'process', command: '/bin/true', workDir: '/tmp/rf-registry', stopGracePeriod: 1000 }),
      context,
    );
    expect(processProvider.kind).toBe('process');
    const simProvider = await built.providerFor(
      scaleSet({ kind: 'sim', url: 'http://127.0.0.1:1' }),
      context,
    );
    expect(simProvider.kind).toBe('sim');
    await simProvider.close?.();
  });

  it('names the scale set and lists the known kinds for an unknown kind', async () => {
    const error = await rejection(registry().providerFor(scaleSet({ kind: 'openstack' }), context));
    expect(error.code).toBe('unknown-provider-kind');
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      'scale set linux-small: unknown provider kind "openstack"; known kinds: ec2, kubernetes, process, sim',
    );
  });

  it("validates the provider block with the factory's schema and names each problem's path", async () => {
    const error = await rejection(
      registry().providerFor(
        scaleSet({ kind: 'process', command: 5, workDir: '/tmp', bogus: true }),
        context,
      ),
    );
    expect(error.code).toBe('invalid-provider-config');
    expect(error.message).toMatch(/^scale set linux-small: invalid process provider block: /);
    expect(error.message).toContain('provider.command');
    expect(error.message).toContain('bogus');
  });

  it('fills defaults from the schema before the factory sees the config', async () => {
    let seen: unknown;
    const factory: ProviderFactory<unknown> = {
      kind: 'process',
      schema: processProviderSchema,
      create(config) {
        seen = config;
        return { kind: 'process' } as Provider;
      },
    };
    await registry({ process: factory }).providerFor(scaleSet({ kind: 'process', command: 'x' }), context);
    expect(seen).toEqual({
      kind: 'process',
      command: 'x',
      workDir: './runner-fleet-work',
      stopGracePeriod: 10_000,
    });
  });

  it('loads a factory on first use only, once, and hands the scale set to it', async () => {
    let loads = 0;
    const contexts: unknown[] = [];
    const built = registry({
      fake: async () => {
        loads += 1;
        return {
          kind: 'fake',
          schema: z.object({ kind: z.literal('fake'), size: z.number().default(1) }),
          create(config, ctx) {
            contexts.push([config, ctx.scaleSet.name, ctx.fleet]);
            return { kind: 'fake' } as Provider;
          },
        };
      },
    });
    expect(loads).toBe(0);
    await built.providerFor(scaleSet({ kind: 'fake' }), context);
    await built.providerFor(scaleSet({ kind: 'fake', size: 3 }), context);
    expect(loads).toBe(1);
    expect(contexts).toEqual([
      [{ kind: 'fake', size: 1 }, 'linux-small', 'fleet'],
      [{ kind: 'fake', size: 3 }, 'linux-small', 'fleet'],
    ]);
  });

  it('refuses a factory registered under another kind than its own', async () => {
    const error = await rejection(registry({ process: simProviderFactory }).factory('process'));
    expect(error.code).toBe('provider-kind-mismatch');
  });

  it('reports a sim block without a url as a configuration error', async () => {
    const error = await rejection(registry().providerFor(scaleSet({ kind: 'sim' }), context));
    expect(error.code).toBe('invalid-provider-config');
  });

  // The config loader already parsed each block; the registry parses again, which needs schemas whose output is a
  // valid input giving the same output.
  it.each([
    [
      'process',
      processProviderSchema,
      { kind: 'process', command: 'run.sh', stopGracePeriod: '30s', env: { A: 'b' } },
    ],
    ['sim', simProviderSchema, { kind: 'sim', url: 'http://127.0.0.1:9/', bootDelay: '2s' }],
  ])('the %s schema accepts its own output unchanged', (_kind, schema, input) => {
    const once = (schema as z.ZodType).parse(input);
    expect((schema as z.ZodType).parse(once)).toEqual(once);
  });
});
