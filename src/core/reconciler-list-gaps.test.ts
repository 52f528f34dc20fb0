/**
 * A runner list that skips one of our runners (pages shift when runners go away while a list is read) must not make
 * the controller think that runner's registration is gone: it would mark a starting runner failed and buy a
 * replacement, or take a busy runner's instance from under its job. The reconciler asks for the missing one by id.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createGitHubClient } from '../github/index.js';
import type { GitHubPort } from './ports.js';
import { Harness, silent, until } from './reconciler.test-helpers.js';

type Client = ReturnType<typeof createGitHubClient>;

/** The real client against the harness's simulator, with its runner list and runner lookup wrapped. */
function gitHubWith(
  harness: Harness,
  wrap: {
    listRunners: (
      client: Client,
      ...a: Parameters<GitHubPort['listRunners']>
    ) => ReturnType<GitHubPort['listRunners']>;
    getRunner: (
      client: Client,
      ...a: Parameters<GitHubPort['getRunner']>
    ) => ReturnType<GitHubPort['getRunner']>;
  },
): GitHubPort {
  const client = createGitHubClient({ config: harness.config.github, logger: silent, retryBaseMs: 5 });
  return {
    ...client,
    registrationUrl: (scope) => client.registrationUrl(scope),
    generateJitConfig: (...a) => client.generateJitConfig(...a),
    registrationToken: (...a) => client.registrationToken(...a),
    deleteRunner: (...a) => client.deleteRunner(...a),
    getJob: (...a) => client.getJob(...a),
    listRunners: (...a) => wrap.listRunners(client, ...a),
    getRunner: (...a) => wrap.getRunner(client, ...a),
  };
}

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe('reconciler: a runner list with a gap', () => {
  it('asks for a missing runner by id instead of reading its absence as removal', async () => {
    // Instances boot after a minute: the runners stay starting, with registrations, for the whole test.
    h = await Harness.start({
      scaleSets: [{ name: 'lin', max: 3, bootDelay: 60_000 }],
      controller: { resyncInterval: 200 },
    });
    let victim: string | null = null;
    let lookups = 0;
    const github = gitHubWith(h, {
      // every list leaves the victim out, as a list whose pages shifted would
      listRunners: async (client, ...a) => (await client.listRunners(...a)).filter((r) => r.name !== victim),
      getRunner: (client, ...a) => {
        lookups++;
        return client.getRunner(...a);
      },
    });
    const c = await h.startController({ github });
    h.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['self-hosted', 'linux'], count: 2 });
    await until(() => c.store.runners('lin').filter((r) => r.state === 'starting').length === 2, 20_000);
    victim = c.store.runners('lin')[0]!.name;
    const resyncs = c.reconciler.health().lastResyncAt ?? 0;
    // several resyncs later: each asked for the victim, and the victim is still starting
    await until(() => (c.reconciler.health().lastResyncAt ?? 0) > resyncs + 1000, 20_000);
    await c.reconciler.settled();
    expect(c.store.runner(victim)?.state).toBe('starting');
    expect(c.store.runners('lin')).toHaveLength(2);
    expect(h.sim.runners().filter((r) => r.name.startsWith('lin-'))).toHaveLength(2);
    expect(lookups).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it('with many missing, takes the list once more instead of a call per runner', async () => {
    h = await Harness.start({
      scaleSets: [{ name: 'lin', max: 12, bootDelay: 60_000 }],
      controller: { resyncInterval: 200 },
    });
    let victims = new Set<string>();
    let lists = 0;
    let lookups = 0;
    const github = gitHubWith(h, {
      // every other list (the first of each resync) leaves the victims out
      listRunners: async (client, ...a) => {
        const all = await client.listRunners(...a);
        return lists++ % 2 === 0 ? all.filter((r) => !victims.has(r.name)) : all;
      },
      getRunner: (client, ...a) => {
        lookups++;
        return client.getRunner(...a);
      },
    });
    const c = await h.startController({ github });
    h.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['self-hosted', 'linux'], count: 12 });
    await until(() => c.store.runners('lin').filter((r) => r.state === 'starting').length === 12, 20_000);
    await c.reconciler.settled();
    // from the next list on, ten runners go missing from the first list of each resync
    lists = 0;
    victims = new Set(
      c.store
        .runners('lin')
        .slice(0, 10)
        .map((r) => r.name),
    );
    const resyncs = c.reconciler.health().lastResyncAt ?? 0;
    await until(() => (c.reconciler.health().lastResyncAt ?? 0) > resyncs + 1000, 20_000);
    await c.reconciler.settled();
    expect(c.store.runners('lin').filter((r) => r.state === 'starting')).toHaveLength(12);
    expect(h.sim.runners().filter((r) => r.name.startsWith('lin-'))).toHaveLength(12);
    expect(lookups).toBe(0);
    expect(lists).toBeGreaterThanOrEqual(4);
  }, 60_000);

  it('believes a list of one page: GitHub answered it at once, so what it lacks is gone', async () => {
    h = await Harness.start({
      scaleSets: [{ name: 'lin', max: 3, bootDelay: 60_000 }],
      controller: { resyncInterval: 200 },
    });
    let victim: string | null = null;
    let lookups = 0;
    const github = gitHubWith(h, {
      listRunners: async (client, ...a) => {
        const all = await client.listRunners(...a);
        return Object.defineProperty(
          all.filter((r) => r.name !== victim),
          'pages',
          { value: all.pages },
        );
      },
      getRunner: (client, ...a) => {
        lookups++;
        return client.getRunner(...a);
      },
    });
    const c = await h.startController({ github });
    h.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['self-hosted', 'linux'], count: 2 });
    await until(() => c.store.runners('lin').filter((r) => r.state === 'starting').length === 2, 20_000);
    victim = c.store.runners('lin')[0]!.name;
    await until(() => c.store.runner(victim!)?.state !== 'starting', 20_000);
    expect(lookups).toBe(0);
  }, 60_000);
});
