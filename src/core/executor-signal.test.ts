/**
 * The executor hands one abort signal to every call out; a full pool of calls listening to it is normal and must not
 * make Node report a listener leak (`runner-fleet start` would print MaxListenersExceededWarning under load).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Instance, InstanceSpec, Provider } from '../providers/provider.js';
import { Store } from '../store/store.js';
import { Executor } from './executor.js';
import { fleetConfig, scaleSetConfig } from '../../test/support/core/planner.js';
import type { GitHubPort } from './ports.js';
import { silent } from '../../test/support/core/reconciler.js';

let dir: string | undefined;

afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Waits until released, listening to the signal twice (as the GitHub client and fetch each do). */
function held(signal: AbortSignal | undefined, release: Promise<void>): Promise<void> {
  for (let i = 0; i < 2; i++) signal?.addEventListener('abort', () => undefined, { once: true });
  return release;
}

describe('executor abort signal', () => {
  it('takes a full pool of calls listening to it without a listener-leak warning', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'rf-executor-signal-'));
    const set = scaleSetConfig({ name: 'lin', max: 64 });
    const store = Store.open({ path: path.join(dir, 's.db'), route: () => 'lin', now: Date.now });
    let open!: () => void;
    const release = new Promise<void>((resolve) => (open = resolve));
    let started = 0;
    const github = {
      generateJitConfig: async (_scope: unknown, req: { name: string }, signal?: AbortSignal) => {
        started++;
        await held(signal, release);
        return {
          runner: { id: started, name: req.name, status: 'offline', busy: false, labels: [] },
          encodedJitConfig: 'x',
        };
      },
    } as unknown as GitHubPort;
    const provider: Provider = {
      kind: 'test',
      create: async (spec: InstanceSpec) =>
        ({
          name: spec.name,
          fleet: spec.fleet,
          scaleSet: spec.scaleSet,
          state: 'running',
          createdAt: Date.now(),
        }) as Instance,
      delete: async () => undefined,
      list: async () => [],
    };
    const executor = new Executor({
      config: fleetConfig([set]),
      store,
      github,
      providers: new Map([['lin', provider]]),
      logger: silent,
      now: Date.now,
      wake: () => undefined,
      concurrency: 32,
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const done = executor.execute(
        Array.from({ length: 32 }, (_, i) => ({
          type: 'create-runner' as const,
          scaleSet: 'lin',
          name: `lin-${String(i).padStart(8, '0')}`,
          resume: false,
        })),
      );
      while (started < 32) await new Promise((r) => setImmediate(r));
      open();
      const outcomes = await done;
      expect(outcomes.filter((o) => o.ok)).toHaveLength(32);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on a later tick
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      store.close();
    }
  });
});
