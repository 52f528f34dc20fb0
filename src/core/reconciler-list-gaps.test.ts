/**
 * A runner list that skips one of our runners (pages shift when runners go away while a list is read) must not make
 * the controller think that runner's registration is gone: it would mark a starting runner failed and buy a
 * replacement, or take a busy runner's instance from under its job. The reconciler asks for the missing one by id,
 * or takes the list again when many are missing; a list of one page is a snapshot and is believed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createGitHubClient } from '../github/index.js';
import type { GitHubPort, RunnerList } from './ports.js';
import { Harness, silent, until } from '../../test/support/core/reconciler.js';
import type { Controller as TestController } from '../../test/support/core/reconciler.js';

type Client = ReturnType<typeof createGitHubClient>;
type ListRunners = (client: Client, ...a: Parameters<GitHubPort['listRunners']>) => Promise<RunnerList>;

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

/**
 * `count` jobs on a scale set whose instances boot after a minute, so its runners stay starting, with registrations,
 * for the whole test; the controller resyncs every 200 ms through the real client, with `listRunners` wrapped and
 * runner lookups counted.
 */
async function startingRunners(
  count: number,
  listRunners: ListRunners,
): Promise<{ c: TestController; lookups: () => number }> {
  h = await Harness.start({
    scaleSets: [{ name: 'lin', max: count, bootDelay: 60_000 }],
    controller: { resyncInterval: 200 },
  });
  const client = createGitHubClient({ config: h.config.github, logger: silent, retryBaseMs: 5 });
  let lookups = 0;
  const github: GitHubPort = {
    ...client,
    registrationUrl: (scope) => client.registrationUrl(scope),
    generateJitConfig: (...a) => client.generateJitConfig(...a),
    registrationToken: (...a) => client.registrationToken(...a),
    deleteRunner: (...a) => client.deleteRunner(...a),
    getJob: (...a) => client.getJob(...a),
    listRunners: (...a) => listRunners(client, ...a),
    getRunner: (...a) => {
      lookups++;
      return client.getRunner(...a);
    },
  };
  const c = await h.startController({ github });
  h.sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['self-hosted', 'linux'], count });
  await until(() => c.store.runners('lin').filter((r) => r.state === 'starting').length === count, 20_000);
  await c.reconciler.settled();
  return { c, lookups: () => lookups };
}

/** Waits for more than a second of resyncs after now. */
async function someResyncs(c: TestController): Promise<void> {
  const resyncs = c.reconciler.health().lastResyncAt ?? 0;
  await until(() => (c.reconciler.health().lastResyncAt ?? 0) > resyncs + 1000, 20_000);
  await c.reconciler.settled();
}

/** Drops names from a list, keeping (or not) how many pages it took. */
function without(list: RunnerList, names: ReadonlySet<string>, keepPages: boolean): RunnerList {
  const kept = list.filter((r) => !names.has(r.name));
  return keepPages ? Object.defineProperty(kept, 'pages', { value: list.pages }) : kept;
}

describe('reconciler: a runner list with a gap', () => {
  it('asks for a missing runner by id instead of reading its absence as removal', async () => {
    const victims = new Set<string>();
    // every list of several pages leaves the victim out, as a list whose pages shifted would
    const { c, lookups } = await startingRunners(2, async (client, ...a) =>
      without(await client.listRunners(...a), victims, false),
    );
    const victim = c.store.runners('lin')[0]!.name;
    victims.add(victim);
    await someResyncs(c);
    // each resync asked for the victim, and the victim is still starting
    expect(c.store.runner(victim)?.state).toBe('starting');
    expect(c.store.runners('lin')).toHaveLength(2);
    expect(h!.sim.runners().filter((r) => r.name.startsWith('lin-'))).toHaveLength(2);
    expect(lookups()).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it('with many missing, takes the list once more instead of a call per runner', async () => {
    const victims = new Set<string>();
    let lists = 0;
    // every other list (the first of each resync) leaves the victims out
    const { c, lookups } = await startingRunners(12, async (client, ...a) => {
      const all = await client.listRunners(...a);
      return lists++ % 2 === 0 ? without(all, victims, false) : all;
    });
    lists = 0;
    for (const r of c.store.runners('lin').slice(0, 10)) victims.add(r.name);
    await someResyncs(c);
    expect(c.store.runners('lin').filter((r) => r.state === 'starting')).toHaveLength(12);
    expect(h!.sim.runners().filter((r) => r.name.startsWith('lin-'))).toHaveLength(12);
    expect(lookups()).toBe(0);
    expect(lists).toBeGreaterThanOrEqual(4);
  }, 60_000);

  it('believes a list of one page: GitHub answered it at once, so what it lacks is gone', async () => {
    const victims = new Set<string>();
    const { c, lookups } = await startingRunners(2, async (client, ...a) =>
      without(await client.listRunners(...a), victims, true),
    );
    const victim = c.store.runners('lin')[0]!.name;
    victims.add(victim);
    await until(() => c.store.runner(victim)?.state !== 'starting', 20_000);
    expect(lookups()).toBe(0);
  }, 60_000);
});
