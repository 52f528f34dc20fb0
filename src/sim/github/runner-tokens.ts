/** Registration and remove tokens (POST .../registration-token, .../remove-token): scoped, expiring, reusable. */
import { runnerToken } from './ids.js';
import type { ScopeRef } from './model.js';
import { scopeKey } from './model.js';

export interface RunnerTokenRecord {
  readonly kind: 'registration' | 'remove';
  readonly scope: ScopeRef;
  readonly scopeKey: string;
  readonly expiresAt: number;
}

export class RunnerTokens {
  #tokens = new Map<string, RunnerTokenRecord>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(ttlMs: number, now: () => number) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  issue(kind: RunnerTokenRecord['kind'], scope: ScopeRef): { token: string; expiresAt: number } {
    const now = this.#now();
    if (this.#tokens.size > 1_000) {
      for (const [t, r] of this.#tokens) if (r.expiresAt <= now) this.#tokens.delete(t);
    }
    const token = runnerToken();
    const expiresAt = now + this.#ttlMs;
    this.#tokens.set(token, { kind, scope, scopeKey: scopeKey(scope), expiresAt });
    return { token, expiresAt };
  }

  /** The record of a valid, unexpired token of this kind, or undefined. */
  check(token: string, kind: RunnerTokenRecord['kind']): RunnerTokenRecord | undefined {
    const record = this.#tokens.get(token);
    if (!record || record.kind !== kind || record.expiresAt <= this.#now()) return undefined;
    return record;
  }

  clear(): void {
    this.#tokens.clear();
  }
}
