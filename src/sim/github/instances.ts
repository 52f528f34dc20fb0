/**
 * The simulated cloud behind runner-fleet's `sim` provider: named instances with string tags, each hosting an
 * emulated runner inside the simulator's process. They belong to the simulator, not to the controller, so a
 * controller crash leaves them running, as it would leave pods and VMs. The instance state follows the runner:
 * pending while it boots, running while it runs, succeeded on exit 0, failed otherwise.
 */
import type { BrokerTransport } from '../runner/protocol.js';
import { runEmulatedRunner } from '../runner/emulator.js';
import { emulatorRegistration } from '../runner/registration.js';
import type { InstanceRegistration } from '../runner/registration.js';

export type { InstanceRegistration } from '../runner/registration.js';

export type InstanceState = 'pending' | 'running' | 'succeeded' | 'failed';

export interface InstanceInput {
  readonly name: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly registration: InstanceRegistration;
  readonly bootDelayMs: number;
}

/** What the API shows of an instance: never the registration (it holds a secret). */
export interface InstanceView {
  readonly name: string;
  readonly tags: Record<string, string>;
  readonly state: InstanceState;
  readonly createdAt: number;
  readonly exitCode?: number;
  readonly message?: string;
}

interface InstanceRecord {
  readonly name: string;
  readonly tags: Record<string, string>;
  state: InstanceState;
  readonly createdAt: number;
  exitCode?: number;
  message?: string;
  readonly abort: AbortController;
  bootTimer: NodeJS.Timeout | null;
  /** Runs the boot step now (it resolves `done` at once when the instance was stopped first). */
  boot: (() => void) | null;
  done: Promise<void>;
  lastLine: string;
}

const view = (r: InstanceRecord): InstanceView => {
  const v: { -readonly [K in keyof InstanceView]: InstanceView[K] } = {
    name: r.name,
    tags: { ...r.tags },
    state: r.state,
    createdAt: r.createdAt,
  };
  if (r.exitCode !== undefined) v.exitCode = r.exitCode;
  if (r.message !== undefined) v.message = r.message;
  return v;
};

export class InstanceManager {
  readonly #transport: BrokerTransport;
  readonly #now: () => number;
  #instances = new Map<string, InstanceRecord>();

  constructor(options: { transport: BrokerTransport; now: () => number }) {
    this.#transport = options.transport;
    this.#now = options.now;
  }

  /** Idempotent on the name: an existing instance is returned as it is (created false). */
  create(input: InstanceInput): { instance: InstanceView; created: boolean } {
    const existing = this.#instances.get(input.name);
    if (existing) return { instance: view(existing), created: false };
    const record: InstanceRecord = {
      name: input.name,
      tags: { ...input.tags },
      state: 'pending',
      createdAt: this.#now(),
      abort: new AbortController(),
      bootTimer: null,
      boot: null,
      done: Promise.resolve(),
      lastLine: '',
    };
    this.#instances.set(input.name, record);
    const registration = emulatorRegistration(input.registration, input.name);
    record.done = new Promise<void>((resolve) => {
      const boot = () => {
        record.bootTimer = null;
        record.boot = null;
        if (record.abort.signal.aborted) return resolve();
        record.state = 'running';
        runEmulatedRunner(registration, {
          signal: record.abort.signal,
          transport: this.#transport,
          log: (line) => {
            record.lastLine = line;
          },
        })
          .then((code) => {
            record.exitCode = code;
            record.state = code === 0 ? 'succeeded' : 'failed';
            if (code !== 0) record.message = `runner exited with code ${code}: ${record.lastLine}`;
          })
          .catch((error: unknown) => {
            record.state = 'failed';
            record.message = `runner crashed: ${error instanceof Error ? error.message : String(error)}`;
          })
          .finally(resolve);
      };
      record.boot = boot;
      if (input.bootDelayMs > 0) record.bootTimer = setTimeout(boot, input.bootDelayMs);
      else queueMicrotask(boot);
    });
    return { instance: view(record), created: true };
  }

  list(tags: Readonly<Record<string, string>> = {}): InstanceView[] {
    const wanted = Object.entries(tags);
    const out: InstanceView[] = [];
    for (const r of this.#instances.values()) {
      if (wanted.every(([k, v]) => r.tags[k] === v)) out.push(view(r));
    }
    return out;
  }

  get(name: string): InstanceView | undefined {
    const r = this.#instances.get(name);
    return r ? view(r) : undefined;
  }

  /** Stops the runner (like a shutdown) and forgets the instance. False when there is no such instance. */
  delete(name: string): boolean {
    const r = this.#instances.get(name);
    if (!r) return false;
    this.#instances.delete(name);
    this.#stop(r, 'SIGTERM');
    return true;
  }

  /** The instance's runner vanishes without a word (a killed process, a lost VM); the instance stays, failed. */
  kill(name: string): InstanceView | undefined {
    const r = this.#instances.get(name);
    if (!r) return undefined;
    this.#stop(r, 'SIGKILL');
    return view(r);
  }

  /** Stops every runner and forgets every instance; resolves when the runners have stopped. */
  async clear(): Promise<void> {
    const all = [...this.#instances.values()];
    this.#instances.clear();
    for (const r of all) this.#stop(r, 'SIGTERM');
    await Promise.all(all.map((r) => r.done));
  }

  get size(): number {
    return this.#instances.size;
  }

  #stop(r: InstanceRecord, reason: 'SIGTERM' | 'SIGKILL'): void {
    if (!r.abort.signal.aborted) r.abort.abort(reason);
    if (r.bootTimer) {
      // Stopped while booting: run the boot step now, which sees the abort and settles `done`; only clearing the
      // timer would leave `done` pending forever and hang clear(), reset() and close().
      clearTimeout(r.bootTimer);
      r.bootTimer = null;
      r.boot?.();
    }
    if (r.state === 'pending') {
      r.state = 'failed';
      r.message = 'stopped before boot';
    }
  }
}
