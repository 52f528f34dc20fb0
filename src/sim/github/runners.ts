/**
 * Runner lifecycle shared by the REST API and the broker: registration (JIT or token mode), labels, online and
 * offline, expiry of unused JIT registrations, and removal.
 */
import type { KeyObject } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { GitHubError } from './errors.js';
import type { JobEngine } from './job-engine.js';
import { labelKeyOf } from './job-engine.js';
import type { Runner, RunnerGroup, RunnerLabel, ScopeRef } from './model.js';
import { scopeKey } from './model.js';
import type { RunnerRegistry } from './runner-registry.js';
import type { World } from './world.js';

export interface NewRunner {
  readonly scope: ScopeRef;
  readonly name: string;
  readonly group: RunnerGroup;
  /** Custom labels (the caller's). */
  readonly labels: readonly string[];
  /** Read-only labels GitHub adds (self-hosted, OS, architecture). */
  readonly readOnlyLabels: readonly string[];
  readonly ephemeral: boolean;
  readonly mode: 'jit' | 'token';
  readonly publicKey: KeyObject;
}

export interface RunnerCounts {
  registered: number;
  online: number;
  busy: number;
}

export class RunnerService {
  readonly registry: RunnerRegistry;
  readonly #world: World;
  readonly #engine: JobEngine;
  readonly #now: () => number;
  readonly #jitExpiryMs: number;
  readonly #offlineAfterMs: number;
  #byClientId = new Map<string, Runner>();
  #online = new Set<Runner>();
  /** Unused JIT registrations in creation (= expiry) order; `#jitHead` skips the expired prefix. */
  #jitQueue: Runner[] = [];
  #jitHead = 0;

  constructor(options: {
    registry: RunnerRegistry;
    world: World;
    engine: JobEngine;
    now: () => number;
    jitExpiryMs: number;
    offlineAfterMs: number;
  }) {
    this.registry = options.registry;
    this.#world = options.world;
    this.#engine = options.engine;
    this.#now = options.now;
    this.#jitExpiryMs = options.jitExpiryMs;
    this.#offlineAfterMs = options.offlineAfterMs;
  }

  /** Registers a runner; 409 when the scope already has a runner of that name. */
  create(input: NewRunner): Runner {
    const key = scopeKey(input.scope);
    if (this.registry.byName(key, input.name)) {
      throw new GitHubError(409, 'Already exists - A runner with the same name already exists.', {
        code: 'runner-name-exists',
      });
    }
    const now = this.#now();
    const runner: Runner = {
      id: this.registry.nextId(),
      name: input.name,
      scope: input.scope,
      scopeKey: key,
      groupId: input.group.id,
      groupName: input.group.name,
      labels: [],
      labelSet: new Set(),
      labelKey: '',
      ephemeral: input.ephemeral,
      mode: input.mode,
      os: 'linux',
      version: null,
      createdAt: now,
      status: 'offline',
      busy: false,
      jobId: null,
      clientId: randomUUID(),
      publicKey: input.publicKey,
      jitConsumed: false,
      jitExpiresAt: input.mode === 'jit' ? now + this.#jitExpiryMs : null,
      sessionId: null,
      lastSeenAt: now,
      connections: 0,
    };
    this.#applyLabels(runner, input.readOnlyLabels, input.labels);
    this.registry.add(runner);
    this.#byClientId.set(runner.clientId, runner);
    if (input.mode === 'jit') this.#jitQueue.push(runner);
    return runner;
  }

  byClientId(clientId: string): Runner | undefined {
    return this.#byClientId.get(clientId);
  }

  /** Removes the registration; a runner waiting in a long poll learns it is gone. */
  remove(runner: Runner): boolean {
    if (!this.registry.remove(runner)) return false;
    this.#byClientId.delete(runner.clientId);
    this.#online.delete(runner);
    runner.status = 'offline';
    runner.sessionId = null;
    this.#engine.stopWaiting(runner, 'gone');
    return true;
  }

  isRegistered(runner: Runner): boolean {
    return this.registry.get(runner.id) === runner;
  }

  /** Replaces the custom labels (read-only labels stay). */
  setCustomLabels(runner: Runner, custom: readonly string[]): void {
    const readOnly = runner.labels.filter((l) => l.type === 'read-only').map((l) => l.name);
    this.#applyLabels(runner, readOnly, custom);
    // A waiting runner re-joins the wait under its new labels with its next poll.
    this.#engine.stopWaiting(runner, null);
  }

  goOnline(runner: Runner, sessionId: string): void {
    runner.sessionId = sessionId;
    runner.status = 'online';
    runner.lastSeenAt = this.#now();
    this.#online.add(runner);
  }

  /** Session ended or runner not heard from: offline; its running job is lost and fails after the timeout. */
  goOffline(runner: Runner): void {
    runner.sessionId = null;
    runner.status = 'offline';
    this.#online.delete(runner);
    this.#engine.stopWaiting(runner, null);
    if (runner.jobId !== null) {
      const job = this.#engine.get(runner.jobId);
      if (job) this.#engine.markLost(job);
    }
  }

  /** Offline detection and expiry of unused JIT registrations. */
  sweep(): void {
    const now = this.#now();
    for (const runner of this.#online) {
      if (runner.connections === 0 && now - runner.lastSeenAt > this.#offlineAfterMs) this.goOffline(runner);
    }
    while (this.#jitHead < this.#jitQueue.length) {
      const runner = this.#jitQueue[this.#jitHead]!;
      if (
        runner.jitExpiresAt !== null &&
        runner.jitExpiresAt > now &&
        !runner.jitConsumed &&
        this.isRegistered(runner)
      )
        break;
      this.#jitHead++;
      if (!runner.jitConsumed && this.isRegistered(runner) && runner.jitExpiresAt !== null)
        this.remove(runner);
    }
    if (this.#jitHead > 1_024 && this.#jitHead * 2 > this.#jitQueue.length) {
      this.#jitQueue = this.#jitQueue.slice(this.#jitHead);
      this.#jitHead = 0;
    }
  }

  counts(): RunnerCounts {
    let busy = 0;
    for (const r of this.registry.all()) if (r.busy) busy++;
    return { registered: this.registry.size, online: this.#online.size, busy };
  }

  clear(): void {
    for (const runner of [...this.registry.all()]) this.remove(runner);
    this.registry.clear();
    this.#byClientId.clear();
    this.#online.clear();
    this.#jitQueue = [];
    this.#jitHead = 0;
  }

  #applyLabels(runner: Runner, readOnly: readonly string[], custom: readonly string[]): void {
    const seen = new Set<string>();
    const labels: RunnerLabel[] = [];
    const add = (name: string, type: RunnerLabel['type']) => {
      const lower = name.toLowerCase();
      if (seen.has(lower)) return;
      seen.add(lower);
      labels.push({ id: this.#world.labelId(name), name, type });
    };
    for (const name of readOnly) add(name, 'read-only');
    for (const name of custom) add(name, 'custom');
    runner.labels = labels;
    runner.labelSet = seen;
    runner.labelKey = labelKeyOf(seen);
  }
}
