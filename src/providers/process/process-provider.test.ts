import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ScaleSetConfig } from '../../core/fleet-config.js';
import { runProviderContract } from '../../../test/support/provider-contract.js';
import type { Instance, InstanceSpec, ProviderContext } from '../provider.js';
import { ProviderError } from '../provider.js';
import { FILES } from './instance-files.js';
import { ProcessProvider, TOKEN_CONFIG_FILE_ENV } from './process-provider.js';
import type { ProcessProviderConfig } from './schema.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/fake-runner.mjs', import.meta.url));
const CONTROLLER = fileURLToPath(new URL('./fixtures/crashing-controller.test-helpers.ts', import.meta.url));
const FLEET = 'test-fleet';
const SET = 'linux-small';

interface Behaviour {
  readonly exit?: number;
  readonly sleep?: number;
  readonly term?: 'ignore' | 'exit';
}

function scaleSet(name: string): ScaleSetConfig {
  return {
    name,
    scope: { org: 'octo-org' },
    runnerGroup: 'Default',
    labels: ['linux'],
    minIdle: 0,
    max: 10,
    ephemeral: true,
    registration: 'jit',
    priority: 0,
    bootstrapTimeout: 60_000,
    idleTimeout: 60_000,
    provider: { kind: 'process' },
  };
}

function context(): ProviderContext {
  return { fleet: FLEET, scaleSet: scaleSet(SET), logger: pino({ level: 'silent' }) };
}

function config(workDir: string, overrides: Partial<ProcessProviderConfig> = {}): ProcessProviderConfig {
  return {
    kind: 'process',
    command: process.execPath,
    args: [FIXTURE],
    workDir,
    stopGracePeriod: 2000,
    ...overrides,
  };
}

function secretFor(b: Behaviour): string {
  const nonce = randomBytes(16).toString('hex');
  return `fake-runner;exit=${b.exit ?? 0};sleep=${b.sleep ?? 60_000};term=${b.term ?? 'exit'};nonce=${nonce}`;
}

function jitSpec(name: string, b: Behaviour = {}, fleet = FLEET, set = SET): InstanceSpec {
  return { name, fleet, scaleSet: set, registration: { mode: 'jit', jitConfig: secretFor(b) } };
}

function tokenSpec(name: string, b: Behaviour = {}): InstanceSpec {
  return {
    name,
    fleet: FLEET,
    scaleSet: SET,
    registration: {
      mode: 'token',
      url: 'https://github.com/octo-org',
      token: secretFor(b),
      labels: ['linux', 'x64'],
      runnerGroup: 'Default',
      ephemeral: true,
    },
  };
}

const secretOf = (spec: InstanceSpec) =>
  spec.registration.mode === 'jit' ? spec.registration.jitConfig : spec.registration.token;

function procArgs(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

function procEnv(pid: number): Record<string, string> {
  const pairs = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  return Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
}

/** Alive and not a zombie (here nothing may reap orphans, so a dead orphan can linger as a zombie). */
function alive(pid: number): boolean {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const signal = () => AbortSignal.timeout(30_000);

runProviderContract('process (fixture runner)', async () => {
  const workDir = await mkdtemp(join(tmpdir(), 'rf-process-contract-'));
  const provider = new ProcessProvider(config(workDir), context());
  const failingProvider = new ProcessProvider(
    config(workDir, { command: join(workDir, 'no-such-runner') }),
    context(),
  );
  return {
    provider,
    failingProvider,
    makeSpec(name, options = {}) {
      const b: Behaviour =
        options.outcome === 'success'
          ? { sleep: 300, exit: 0 }
          : options.outcome === 'failure'
            ? { sleep: 300, exit: 3 }
            : { sleep: 60_000 };
      return options.mode === 'token' ? tokenSpec(name, b) : jitSpec(name, b, FLEET, SET);
    },
    async cleanup() {
      await provider.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
});

describe('process provider', () => {
  let workDir: string;
  let provider: ProcessProvider;
  const names: string[] = [];
  const strangers: number[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'rf-process-'));
  });

  afterEach(async () => {
    await Promise.all(names.splice(0).map((n) => provider.delete(n, signal())));
    for (const pid of strangers.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await provider?.close();
  });

  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  function track(spec: InstanceSpec): InstanceSpec {
    names.push(spec.name);
    return spec;
  }

  const runnerPid = (name: string) =>
    waitFor(`runner pid of ${name}`, () => {
      const file = join(workDir, name, 'fake-runner.pid');
      // The fake runner may have created the file and not yet written its pid: wait for a whole number.
      const pid = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0;
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    });

  async function stateOf(p: ProcessProvider, name: string): Promise<Instance | undefined> {
    return (await p.list({ fleet: FLEET }, signal())).find((i) => i.name === name);
  }

  it('puts the JIT config in the environment and nowhere in argv', async () => {
    provider = new ProcessProvider(config(workDir, { env: { RUNNER_EXTRA: 'from-config' } }), context());
    const spec = track(jitSpec('argv-jit'));
    const instance = await provider.create(spec, signal());
    const wrapper = Number(instance.providerId);
    const runner = await runnerPid(spec.name);
    for (const pid of [wrapper, runner]) {
      expect(procArgs(pid).join(' ')).not.toContain(secretOf(spec));
    }
    expect(procArgs(runner)).toEqual([process.execPath, FIXTURE]);
    const env = procEnv(runner);
    expect(env.ACTIONS_RUNNER_INPUT_JITCONFIG).toBe(secretOf(spec));
    expect(env.RUNNER_EXTRA).toBe('from-config');
    // The controller's environment (which holds its own secrets) is not inherited.
    expect(env.HOME).toBeUndefined();
    // PWD comes from the wrapper shell, and shows the runner's own work directory.
    expect(Object.keys(env).sort()).toEqual([
      'ACTIONS_RUNNER_INPUT_JITCONFIG',
      'PATH',
      'PWD',
      'RUNNER_EXTRA',
    ]);
    expect(env.PWD).toBe(join(workDir, spec.name));
    expect(readFileSync(join(workDir, spec.name, FILES.record), 'utf8')).not.toContain(secretOf(spec));
  });

  it('passes token mode settings through a 0600 file and the environment, with only non-secret flags in argv', async () => {
    provider = new ProcessProvider(config(workDir), context());
    const spec = track(tokenSpec('argv-token', { sleep: 1000, exit: 0 }));
    const instance = await provider.create(spec, signal());
    const runner = await runnerPid(spec.name);
    const file = join(workDir, spec.name, FILES.tokenConfig);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(workDir, spec.name))).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      url: 'https://github.com/octo-org',
      token: secretOf(spec),
      name: spec.name,
      labels: ['linux', 'x64'],
      runnerGroup: 'Default',
      ephemeral: true,
    });
    for (const pid of [Number(instance.providerId), runner]) {
      expect(procArgs(pid).join(' ')).not.toContain(secretOf(spec));
    }
    expect(procArgs(runner).slice(2)).toEqual([
      '--url',
      'https://github.com/octo-org',
      '--name',
      spec.name,
      '--labels',
      'linux,x64',
      '--runnergroup',
      'Default',
      '--ephemeral',
      '--no-default-labels',
    ]);
    const env = procEnv(runner);
    expect(env.ACTIONS_RUNNER_INPUT_TOKEN).toBe(secretOf(spec));
    expect(env[TOKEN_CONFIG_FILE_ENV]).toBe(file);
    expect(env.ACTIONS_RUNNER_INPUT_JITCONFIG).toBeUndefined();
    // The fixture exits 64 if anything it got disagrees; 0 means the whole channel worked.
    const done = await waitFor('token runner to finish', async () => {
      const i = await stateOf(provider, spec.name);
      return i?.state === 'running' ? undefined : i;
    });
    expect(done).toMatchObject({ state: 'succeeded' });
    expect(existsSync(file)).toBe(false);
  });

  it('writes stdout and stderr of each runner to its own log file, without the secret', async () => {
    provider = new ProcessProvider(config(workDir), context());
    const a = track(jitSpec('log-a', { sleep: 100, exit: 0 }));
    const b = track(jitSpec('log-b', { sleep: 100, exit: 5 }));
    await Promise.all([provider.create(a, signal()), provider.create(b, signal())]);
    const pids = await Promise.all([runnerPid(a.name), runnerPid(b.name)]);
    for (const [i, spec] of [a, b].entries()) {
      const log = join(workDir, spec.name, FILES.log);
      const text = await waitFor(`log of ${spec.name}`, async () => {
        const t = await readFile(log, 'utf8');
        return t.includes('fake runner done') ? t : undefined;
      });
      expect(text).toContain(`fake runner started: pid ${pids[i]}`);
      expect(text).toContain('fake runner: a line on stderr');
      expect(text).toContain(`fake runner done: exit ${i === 0 ? 0 : 5}`);
      expect(text).not.toContain(`pid ${String(pids[1 - i])}`);
      expect(text).not.toContain(secretOf(spec));
    }
  });

  it('reports exit 0 as succeeded and any other exit as failed with the code, also through watch', async () => {
    provider = new ProcessProvider(config(workDir), context());
    const seen: Instance[] = [];
    const stop = provider.watch((i) => seen.push(i));
    const ok = track(jitSpec('exit-ok', { sleep: 200, exit: 0 }));
    const bad = track(jitSpec('exit-bad', { sleep: 200, exit: 7 }));
    expect((await provider.create(ok, signal())).state).toBe('running');
    expect((await provider.create(bad, signal())).state).toBe('running');
    await waitFor('both exits', () =>
      seen.filter((i) => i.state !== 'running').length === 2 ? true : undefined,
    );
    stop();
    expect(seen.find((i) => i.name === ok.name && i.state !== 'running')).toMatchObject({
      state: 'succeeded',
    });
    expect(seen.find((i) => i.name === bad.name && i.state !== 'running')).toMatchObject({
      state: 'failed',
      message: 'runner exited with code 7',
    });
    expect(await stateOf(provider, bad.name)).toMatchObject({
      state: 'failed',
      message: 'runner exited with code 7',
    });
  });

  it('delete stops a cooperative runner with SIGTERM, without waiting for the grace period', async () => {
    provider = new ProcessProvider(config(workDir, { stopGracePeriod: 10_000 }), context());
    const spec = jitSpec('term-ok');
    await provider.create(spec, signal());
    const runner = await runnerPid(spec.name);
    const started = Date.now();
    await provider.delete(spec.name, signal());
    expect(Date.now() - started).toBeLessThan(5000);
    expect(alive(runner)).toBe(false);
    expect(existsSync(join(workDir, spec.name))).toBe(false);
  });

  it('delete escalates to SIGKILL after stopGracePeriod when SIGTERM is ignored', async () => {
    provider = new ProcessProvider(config(workDir, { stopGracePeriod: 800 }), context());
    const spec = jitSpec('term-ignored', { term: 'ignore' });
    await provider.create(spec, signal());
    const runner = await runnerPid(spec.name);
    const log = join(workDir, spec.name, FILES.log);
    const started = Date.now();
    const deleting = provider.delete(spec.name, signal());
    const logged = await waitFor('SIGTERM in the log', async () => {
      const text = await readFile(log, 'utf8').catch(() => '');
      return text.includes('SIGTERM ignored') ? text : undefined;
    });
    expect(logged).toContain('SIGTERM ignored');
    expect(alive(runner)).toBe(true);
    await deleting;
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
    expect(alive(runner)).toBe(false);
    expect(await stateOf(provider, spec.name)).toBeUndefined();
  });

  it('an aborted delete rejects as retryable and leaves the instance for the next delete', async () => {
    provider = new ProcessProvider(config(workDir, { stopGracePeriod: 20_000 }), context());
    const spec = jitSpec('abort-delete', { term: 'ignore' });
    await provider.create(spec, signal());
    const runner = await runnerPid(spec.name);
    const error = await provider.delete(spec.name, AbortSignal.timeout(300)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ code: 'aborted', retryable: true });
    expect(await stateOf(provider, spec.name)).toMatchObject({ state: 'running' });
    await new ProcessProvider(config(workDir, { stopGracePeriod: 100 }), context()).delete(
      spec.name,
      signal(),
    );
    expect(alive(runner)).toBe(false);
  });

  it('re-adopts runners after the controller is killed with SIGKILL, and knows how they ended', async () => {
    const first = jitSpec('restart-exits', { sleep: 2500, exit: 3 });
    const held = jitSpec('restart-held');
    names.push(held.name, first.name);
    const plan = { config: config(workDir), specs: [first, held] };
    const controller = spawn(process.execPath, ['--import', 'tsx', CONTROLLER, JSON.stringify(plan)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(controller.stdout, 'data')) as [Buffer];
    const created = JSON.parse(line.toString()) as Instance[];
    expect(created.map((i) => i.state)).toEqual(['running', 'running']);
    controller.kill('SIGKILL');
    await once(controller, 'exit');

    const runners = await Promise.all([runnerPid(first.name), runnerPid(held.name)]);
    expect(runners.every(alive)).toBe(true);

    // A new provider object, as a restarted controller builds it, knows only the disk.
    provider = new ProcessProvider(config(workDir), context());
    const listed = await provider.list({ fleet: FLEET, scaleSet: SET }, signal());
    const mine = listed.filter((i) => i.name === first.name || i.name === held.name);
    expect(mine.map((i) => [i.name, i.state, i.providerId]).sort()).toEqual(
      created.map((i) => [i.name, 'running', i.providerId]).sort(),
    );
    const seen: Instance[] = [];
    const stop = provider.watch((i) => seen.push(i));
    const ended = await waitFor('the adopted runner to end', () =>
      seen.find((i) => i.name === first.name && i.state !== 'running'),
    );
    stop();
    expect(ended).toMatchObject({ state: 'failed', message: 'runner exited with code 3' });

    await provider.delete(held.name, signal());
    expect(alive(runners[1] ?? -1)).toBe(false);
    expect(await stateOf(provider, held.name)).toBeUndefined();
  });

  it('re-adopts a runner whose record lost the pid (crash right after spawn) through the wrapper pid file', async () => {
    provider = new ProcessProvider(config(workDir), context());
    const spec = track(jitSpec('crash-window'));
    const instance = await provider.create(spec, signal());
    // Once the runner runs, the wrapper has written its pid file (its first act).
    const runner = await runnerPid(spec.name);
    const recordFile = join(workDir, spec.name, FILES.record);
    const record = JSON.parse(await readFile(recordFile, 'utf8')) as Record<string, unknown>;
    delete record.process;
    await writeFile(recordFile, JSON.stringify(record));

    const restarted = new ProcessProvider(config(workDir), context());
    expect(await stateOf(restarted, spec.name)).toMatchObject({
      state: 'running',
      providerId: instance.providerId,
    });
    await restarted.delete(spec.name, signal());
    expect(alive(runner)).toBe(false);
  });

  it('never takes a reused pid for the runner, and never signals it', async () => {
    provider = new ProcessProvider(config(workDir), context());
    const spec = track(jitSpec('pid-reuse', { sleep: 100, exit: 0 }));
    await provider.create(spec, signal());
    await waitFor('the runner to end', async () =>
      (await stateOf(provider, spec.name))?.state === 'succeeded' ? 1 : undefined,
    );
    // Make it look as if the wrapper died without recording a status and its pid went to a stranger, which leads
    // its own process group (the dangerous case: a group kill would hit it).
    const stranger = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    strangers.push(stranger.pid ?? -1);
    await unlink(join(workDir, spec.name, FILES.exitCode));
    const recordFile = join(workDir, spec.name, FILES.record);
    const record = JSON.parse(await readFile(recordFile, 'utf8')) as { process: { pid: number } };
    record.process.pid = stranger.pid ?? -1;
    await writeFile(recordFile, JSON.stringify(record));

    const restarted = new ProcessProvider(config(workDir, { stopGracePeriod: 200 }), context());
    expect(await stateOf(restarted, spec.name)).toMatchObject({
      state: 'failed',
      message: 'runner process ended without recording an exit status',
    });
    await restarted.delete(spec.name, signal());
    expect(alive(stranger.pid ?? -1)).toBe(true);
  });

  it('reports a missing command as a fatal create error and leaves nothing behind', async () => {
    provider = new ProcessProvider(config(workDir, { command: 'no-such-runner-command' }), context());
    const spec = jitSpec('missing-command');
    const error = await provider.create(spec, signal()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ code: 'command-not-found', retryable: false });
    expect(existsSync(join(workDir, spec.name))).toBe(false);
  });

  it('refuses to reuse a name that another fleet or scale set owns', async () => {
    provider = new ProcessProvider(config(workDir), context());
    const spec = track(jitSpec('owned'));
    await provider.create(spec, signal());
    const error = await provider.create({ ...spec, scaleSet: 'other' }, signal()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'name-conflict', retryable: false });
  });
});
