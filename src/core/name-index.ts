/**
 * A map keyed by runner name, split into buckets by the name's last characters. A pass over 10,000 runners builds
 * such an index every time; one Map that size has a backing store in V8's large-object space, which only full
 * (mark-compact) collections reclaim, and those showed as the planner's slowest passes. Buckets of a few hundred
 * entries stay in the young generation and die cheaply.
 */
const BUCKETS = 128;

function bucketOf(name: string): number {
  const n = name.length;
  if (n === 0) return 0;
  return ((name.charCodeAt(n - 1) * 31 + (n > 1 ? name.charCodeAt(n - 2) : 0)) & 0x7fffffff) % BUCKETS;
}

export class NameIndex<V> {
  readonly #buckets: (Map<string, V> | undefined)[] = new Array<Map<string, V> | undefined>(BUCKETS);

  get(name: string): V | undefined {
    return this.#buckets[bucketOf(name)]?.get(name);
  }

  has(name: string): boolean {
    return this.#buckets[bucketOf(name)]?.has(name) ?? false;
  }

  set(name: string, value: V): void {
    const b = bucketOf(name);
    let m = this.#buckets[b];
    if (m === undefined) this.#buckets[b] = m = new Map();
    m.set(name, value);
  }
}
