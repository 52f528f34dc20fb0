/**
 * The `process` provider: each runner is a local child process, started detached (its own session and process
 * group) so a controller crash leaves it running, tracked on disk so a restarted controller re-adopts it.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { constants } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Instance, InstanceSelector, InstanceSpec, Provider, ProviderContext } from '../provider.js';
import { ProviderError } from '../provider.js';
import type { InstanceRecord } from './instance-files.js';
import { FILES, readExitCode, readRecord, readWrapperPid, writeRecord } from './instance-files.js';
import type { ProcessIdentity } from './proc-identity.js';
import type { ProcessProviderConfig } from './schema.js';
import { groupAlive, identify, processCwd, readBootId } from './proc-identity.js';
import { WRAPPER_SHELL, wrapperArgs } from './wrapper.js';

export interface ProcessProviderOptions {
  /**
   * Environment every runner starts from, before the config's `env`. The controller's own environment is never
   * inherited: it holds the controller's secrets. Default: a standard PATH only.
   */
  readonly baseEnv?: Readonly<Record<string, string>>;
  readonly sleep?: (ms: number) => Promise<void>;
  /** ms between checks of adopted runners (started by an earlier controller) while someone watches. Default 1000. */
  readonly adoptedPollInterval?: number;
  readonly setInterval?: (fn: () => void, ms: number) => unknown;
  readonly clearInterval?: (handle: unknown) => void;
  /** ms a record may stay without a process before the instance counts as failed. Default 30 s. */
  readonly startTimeout?: number;
  /** ms to wait for the process group to vanish after SIGKILL. Default 5 s. */
  readonly killTimeout?: number;
}

/** Env var naming the 0600 JSON file with the token-mode config.sh settings (token included). */
export const TOKEN_CONFIG_FILE_ENV = 'RUNNER_FLEET_TOKEN_CONFIG_FILE';
export const JIT_CONFIG_ENV = 'ACTIONS_RUNNER_INPUT_JITCONFIG';
export const TOKEN_ENV = 'ACTIONS_RUNNER_INPUT_TOKEN';
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A runner name is a directory name here: no separators, no dot files, nothing a shell would misread. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

type Exit = { readonly code: number | null; readonly signal: NodeJS.Signals | null };

export class ProcessProvider implements Provider {
  readonly kind = 'process';
  readonly #config: ProcessProviderConfig;
  readonly #workDir: string;
  readonly #command: string;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #options: ProcessProviderOptions;
  readonly #bootId = readBootId();
  /** Exits of the children this object spawned, by runner name. */
  readonly #exits = new Map<string, Exit>();
  readonly #children = new Set<string>();
  readonly #creating = new Map<string, Promise<Instance>>();
  readonly #watchers = new Set<(instance: Instance) => void>();
  /** Runners seen running that this object did not spawn: no exit event will come, so they are polled. */
  readonly #adopted = new Set<string>();
  readonly #lastState = new Map<string, Instance['state']>();
  #pollHandle: unknown = undefined;

  constructor(config: ProcessProviderConfig, context: ProviderContext, options: ProcessProviderOptions = {}) {
    this.#config = config;
    this.#options = options;
    this.#workDir = resolve(config.workDir);
    // The runner's working directory is its instance directory, so a relative path is anchored here, once.
    this.#command =
      config.command.includes('/') && !isAbsolute(config.command) ? resolve(config.command) : config.command;
    this.#logger = context.logger.child({ provider: 'process' });
    this.#now = context.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => delay(ms));
  }

  async create(spec: InstanceSpec, signal: AbortSignal): Promise<Instance> {
    checkName(spec.name);
    const pending = this.#creating.get(spec.name);
    if (pending !== undefined) return pending;
    const promise = this.#create(spec, signal).finally(() => this.#creating.delete(spec.name));
    this.#creating.set(spec.name, promise);
    return promise;
  }

  async delete(name: string, signal: AbortSignal): Promise<void> {
    checkName(name);
    // Let a create of the same name finish first, so its process cannot slip past the kill.
    await this.#creating.get(name)?.catch(() => undefined);
    const dir = this.#dir(name);
    const record = await readRecord(dir);
    const identity = record?.process ?? (await this.#identityFromWrapper(dir));
    if (identity !== null) await this.#stop(name, identity, signal);
    // Rename first (atomic), then remove: a crash in between leaves only a dot directory that list() ignores.
    const trash = join(this.#workDir, `.deleted-${name}-${this.#now()}`);
    try {
      await rename(dir, trash);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return this.#forget(name);
      throw fsError('delete', name, error);
    }
    await rm(trash, { recursive: true, force: true });
    this.#forget(name);
    this.#logger.info({ runner: name }, 'process instance deleted');
  }

  async list(selector: InstanceSelector, signal: AbortSignal): Promise<Instance[]> {
    let entries: string[];
    try {
      entries = await readdir(this.#workDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fsError('list', this.#workDir, error);
    }
    const instances: Instance[] = [];
    for (const entry of entries) {
      if (signal.aborted) throw aborted('list', signal);
      if (entry.startsWith('.deleted-')) {
        // Left by a delete that crashed between its rename and its removal.
        await rm(join(this.#workDir, entry), { recursive: true, force: true }).catch(() => undefined);
        continue;
      }
      if (!NAME.test(entry)) continue;
      const record = await readRecord(this.#dir(entry));
      if (record === null || record.name !== entry || record.fleet !== selector.fleet) continue;
      if (selector.scaleSet !== undefined && record.scaleSet !== selector.scaleSet) continue;
      const instance = await this.#observe(record);
      if (instance.state === 'running' && !this.#children.has(entry)) this.#adopted.add(entry);
      instances.push(instance);
    }
    this.#updatePolling();
    return instances;
  }

  watch(onChange: (instance: Instance) => void): () => void {
    this.#watchers.add(onChange);
    this.#updatePolling();
    return () => {
      this.#watchers.delete(onChange);
      this.#updatePolling();
    };
  }

  async close(): Promise<void> {
    this.#watchers.clear();
    this.#updatePolling();
  }

  async #create(spec: InstanceSpec, signal: AbortSignal): Promise<Instance> {
    if (signal.aborted) throw aborted('create', signal);
    const dir = this.#dir(spec.name);
    const existing = await readRecord(dir);
    if (existing !== null) return this.#existing(existing, spec);
    const env = this.#env(spec);
    await this.#checkCommand(env.PATH ?? DEFAULT_PATH);
    try {
      await mkdir(this.#workDir, { recursive: true, mode: 0o700 });
      await mkdir(dir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError('create', spec.name, error);
      // Another controller created it meanwhile, or a create crashed before writing the record (then we take over).
      const raced = await readRecord(dir);
      if (raced !== null) return this.#existing(raced, spec);
    }
    const record: InstanceRecord = {
      version: 1,
      name: spec.name,
      fleet: spec.fleet,
      scaleSet: spec.scaleSet,
      createdAt: this.#now(),
      registration: spec.registration.mode,
    };
    try {
      await writeRecord(dir, record);
      const args = [...(this.#config.args ?? [])];
      if (spec.registration.mode === 'token') {
        const r = spec.registration;
        const file = join(dir, FILES.tokenConfig);
        const settings = {
          url: r.url,
          token: r.token,
          name: spec.name,
          labels: r.labels,
          runnerGroup: r.runnerGroup,
          ephemeral: r.ephemeral,
        };
        await writeFile(file, `${JSON.stringify(settings)}\n`, { mode: 0o600 });
        args.push(
          '--url',
          r.url,
          '--name',
          spec.name,
          '--labels',
          r.labels.join(','),
          '--runnergroup',
          r.runnerGroup,
        );
        if (r.ephemeral) args.push('--ephemeral');
        // The scale set's labels are the runner's labels, as with a JIT runner: no implicit OS and architecture.
        args.push('--no-default-labels');
        env[TOKEN_CONFIG_FILE_ENV] = file;
      }
      const identity = await this.#spawn(spec.name, dir, args, env);
      const started: InstanceRecord = { ...record, process: identity };
      await writeRecord(dir, started);
      this.#logger.info({ runner: spec.name, pid: identity.pid }, 'process instance started');
      const instance = await this.#observe(started);
      this.#emit(instance);
      return instance;
    } catch (error) {
      // Nothing half-made stays behind: a retried create starts clean instead of adopting a dead record.
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      if (error instanceof ProviderError) throw error;
      throw fsError('create', spec.name, error);
    }
  }

  #existing(record: InstanceRecord, spec: InstanceSpec): Promise<Instance> {
    if (record.fleet !== spec.fleet || record.scaleSet !== spec.scaleSet) {
      throw new ProviderError(
        `process instance ${spec.name} already exists for fleet ${record.fleet}, scale set ${record.scaleSet}`,
        { code: 'name-conflict', retryable: false },
      );
    }
    return this.#observe(record);
  }

  #env(spec: InstanceSpec): Record<string, string> {
    const env: Record<string, string> = {
      PATH: DEFAULT_PATH,
      ...this.#options.baseEnv,
      ...this.#config.env,
    };
    if (spec.registration.mode === 'jit') env[JIT_CONFIG_ENV] = spec.registration.jitConfig;
    else env[TOKEN_ENV] = spec.registration.token;
    return env;
  }

  /** A missing command is a configuration error: report it as a failed create, not as a runner that fails later. */
  async #checkCommand(path: string): Promise<void> {
    const command = this.#command;
    const candidates = command.includes('/')
      ? [command]
      : path.split(':').map((d) => join(d || '.', command));
    for (const candidate of candidates) {
      try {
        await access(candidate, constants.X_OK);
        return;
      } catch {
        // try the next PATH entry
      }
    }
    throw new ProviderError(`runner command not found or not executable: ${command}`, {
      code: 'command-not-found',
      retryable: false,
    });
  }

  async #spawn(
    name: string,
    dir: string,
    args: readonly string[],
    env: Record<string, string>,
  ): Promise<ProcessIdentity> {
    const log = await open(join(dir, FILES.log), 'a', 0o600);
    try {
      const child = spawn(WRAPPER_SHELL, wrapperArgs(this.#command, args), {
        cwd: dir,
        env,
        detached: true,
        stdio: ['ignore', log.fd, log.fd],
      });
      // Read the identity now, before the event loop can reap a child that exits at once.
      const identity = child.pid === undefined ? null : identify(child.pid, this.#bootId, true);
      child.on('error', () => undefined);
      if (identity === null) {
        const [error] = (await once(child, 'error').catch((e: unknown) => [e])) as unknown[];
        throw new ProviderError(`could not start runner process ${name}`, {
          code: 'spawn-failed',
          retryable: true,
          cause: error,
        });
      }
      this.#children.add(name);
      child.once('exit', (code, signal) => {
        this.#exits.set(name, { code, signal });
        void this.#report(name);
      });
      // The controller may exit while runners go on.
      child.unref();
      return identity;
    } finally {
      await log.close();
    }
  }

  /** SIGTERM to the runner's process group, then SIGKILL after the grace period. */
  async #stop(name: string, identity: ProcessIdentity, signal: AbortSignal): Promise<void> {
    if (!groupAlive(identity, this.#bootId)) return;
    this.#signal(identity, 'SIGTERM');
    if (await this.#waitGone(identity, this.#config.stopGracePeriod, signal)) return;
    this.#logger.warn({ runner: name }, 'runner ignored SIGTERM for the grace period; sending SIGKILL');
    this.#signal(identity, 'SIGKILL');
    if (await this.#waitGone(identity, this.#options.killTimeout ?? 5000, signal)) return;
    throw new ProviderError(`runner process ${name} still alive after SIGKILL`, {
      code: 'stop-timeout',
      retryable: true,
    });
  }

  #signal(identity: ProcessIdentity, sig: NodeJS.Signals): void {
    try {
      process.kill(-identity.pid, sig);
    } catch {
      // ESRCH: gone between the check and the signal.
    }
  }

  async #waitGone(identity: ProcessIdentity, ms: number, signal: AbortSignal): Promise<boolean> {
    const deadline = this.#now() + ms;
    for (;;) {
      if (!groupAlive(identity, this.#bootId)) return true;
      if (signal.aborted) throw aborted('delete', signal);
      if (this.#now() >= deadline) return false;
      await this.#sleep(Math.min(50, Math.max(1, deadline - this.#now())));
    }
  }

  /** Covers a crash after spawn but before the record got the pid: the wrapper wrote its own pid file. */
  async #identityFromWrapper(dir: string): Promise<ProcessIdentity | null> {
    const pid = await readWrapperPid(dir);
    // The working directory proves the pid still is our wrapper and not a stranger that reused the number.
    if (pid === null || processCwd(pid) !== dir) return null;
    return identify(pid, this.#bootId);
  }

  /** The instance as the disk and /proc show it now. */
  async #observe(record: InstanceRecord): Promise<Instance> {
    const dir = this.#dir(record.name);
    const base = {
      name: record.name,
      fleet: record.fleet,
      scaleSet: record.scaleSet,
      createdAt: record.createdAt,
    };
    let identity = record.process ?? null;
    if (identity === null) {
      identity = await this.#identityFromWrapper(dir);
      if (identity !== null) await writeRecord(dir, { ...record, process: identity }).catch(() => undefined);
    }
    if (identity === null) {
      if (this.#creating.has(record.name)) return { ...base, state: 'pending' };
      const code = await readExitCode(dir);
      if (code !== null) return exited(base, code);
      if (this.#now() - record.createdAt < (this.#options.startTimeout ?? 30_000))
        return { ...base, state: 'pending' };
      return { ...base, state: 'failed', message: 'the runner process never started' };
    }
    const withId = { ...base, providerId: String(identity.pid) };
    const code = await readExitCode(dir);
    if (code !== null) return exited(withId, code);
    // The group, not the wrapper, is the runner: a SIGTERM kills the wrapper at once while the runner winds down.
    if (groupAlive(identity, this.#bootId)) return { ...withId, state: 'running' };
    const exit = this.#exits.get(record.name);
    // It ended between the two reads, or ended without the wrapper recording a status (the wrapper was killed).
    const late = await readExitCode(dir);
    if (late !== null) return exited(withId, late);
    if (exit?.code != null) return exited(withId, exit.code);
    const how = exit?.signal ? `was killed by ${exit.signal}` : 'ended without recording an exit status';
    return { ...withId, state: 'failed', message: `runner process ${how}` };
  }

  async #report(name: string): Promise<void> {
    if (this.#watchers.size === 0) return;
    const record = await readRecord(this.#dir(name));
    if (record !== null) this.#emit(await this.#observe(record));
  }

  #emit(instance: Instance): void {
    if (this.#lastState.get(instance.name) === instance.state) return;
    this.#lastState.set(instance.name, instance.state);
    if (instance.state !== 'running' && instance.state !== 'pending') this.#adopted.delete(instance.name);
    for (const watcher of this.#watchers) {
      try {
        watcher(instance);
      } catch (error) {
        this.#logger.error({ err: error, runner: instance.name }, 'instance watcher threw');
      }
    }
  }

  #updatePolling(): void {
    const want = this.#watchers.size > 0 && this.#adopted.size > 0;
    if (want && this.#pollHandle === undefined) {
      const set = this.#options.setInterval ?? setInterval;
      this.#pollHandle = set(() => void this.#pollAdopted(), this.#options.adoptedPollInterval ?? 1000);
      (this.#pollHandle as { unref?: () => void }).unref?.();
    } else if (!want && this.#pollHandle !== undefined) {
      (this.#options.clearInterval ?? clearInterval)(this.#pollHandle as NodeJS.Timeout);
      this.#pollHandle = undefined;
    }
  }

  async #pollAdopted(): Promise<void> {
    for (const name of [...this.#adopted]) {
      const record = await readRecord(this.#dir(name));
      if (record === null) {
        this.#adopted.delete(name);
        continue;
      }
      this.#emit(await this.#observe(record));
    }
    this.#updatePolling();
  }

  #forget(name: string): void {
    this.#exits.delete(name);
    this.#children.delete(name);
    this.#adopted.delete(name);
    this.#lastState.delete(name);
    this.#updatePolling();
  }

  #dir(name: string): string {
    return join(this.#workDir, name);
  }
}

function exited(base: Omit<Instance, 'state'>, code: number): Instance {
  return code === 0
    ? { ...base, state: 'succeeded', message: 'runner exited with code 0' }
    : { ...base, state: 'failed', message: `runner exited with code ${code}` };
}

function aborted(op: string, signal: AbortSignal): ProviderError {
  return new ProviderError(`process provider ${op} aborted`, {
    code: 'aborted',
    retryable: true,
    cause: signal.reason,
  });
}

function checkName(name: string): void {
  if (!NAME.test(name)) {
    throw new ProviderError(`invalid instance name ${JSON.stringify(name.slice(0, 140))}`, {
      code: 'invalid-name',
      retryable: false,
    });
  }
}

function fsError(op: string, subject: string, error: unknown): ProviderError {
  const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
  // Permissions and missing parents are configuration problems; anything else (EMFILE, ENOSPC...) may pass.
  const fatal = code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR' || code === 'EROFS';
  return new ProviderError(`process provider ${op} ${subject}: ${code}`, {
    code: 'filesystem',
    retryable: !fatal,
    cause: error,
  });
}
