/**
 * Registered runners, indexed by id, by scope and by name within a scope. Listing a page is an array slice of a
 * per-scope list kept in id order, so 10,000 runners list at 100 a page without a scan per request.
 */
import type { Runner } from './model.js';

interface ScopeIndex {
  readonly byName: Map<string, Runner>;
  readonly byId: Map<number, Runner>;
  /** Runners in id order; rebuilt lazily after a change. */
  ordered: Runner[] | null;
}

export class RunnerRegistry {
  #byId = new Map<number, Runner>();
  #scopes = new Map<string, ScopeIndex>();
  #nextId = 1;

  nextId(): number {
    return this.#nextId++;
  }

  get size(): number {
    return this.#byId.size;
  }

  #scope(key: string): ScopeIndex {
    let index = this.#scopes.get(key);
    if (!index) {
      index = { byName: new Map(), byId: new Map(), ordered: null };
      this.#scopes.set(key, index);
    }
    return index;
  }

  add(runner: Runner): void {
    const index = this.#scope(runner.scopeKey);
    this.#byId.set(runner.id, runner);
    index.byId.set(runner.id, runner);
    index.byName.set(runner.name.toLowerCase(), runner);
    // Ids only grow, so an append keeps the cached order valid.
    index.ordered?.push(runner);
  }

  remove(runner: Runner): boolean {
    if (!this.#byId.delete(runner.id)) return false;
    const index = this.#scope(runner.scopeKey);
    index.byId.delete(runner.id);
    if (index.byName.get(runner.name.toLowerCase()) === runner)
      index.byName.delete(runner.name.toLowerCase());
    index.ordered = null;
    return true;
  }

  get(id: number): Runner | undefined {
    return this.#byId.get(id);
  }

  getInScope(scopeKey: string, id: number): Runner | undefined {
    return this.#scopes.get(scopeKey)?.byId.get(id);
  }

  byName(scopeKey: string, name: string): Runner | undefined {
    return this.#scopes.get(scopeKey)?.byName.get(name.toLowerCase());
  }

  /** Runners of a scope in id order. The array is shared: callers must not modify it. */
  list(scopeKey: string): readonly Runner[] {
    const index = this.#scopes.get(scopeKey);
    if (!index) return [];
    // Ids only grow and runners are added right after their id is assigned, so the insertion order of the Map
    // is id order: rebuilding after a removal is a copy, not a sort.
    if (!index.ordered) index.ordered = [...index.byId.values()];
    return index.ordered;
  }

  all(): IterableIterator<Runner> {
    return this.#byId.values();
  }

  clear(): void {
    this.#byId.clear();
    this.#scopes.clear();
  }
}
