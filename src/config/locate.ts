/** Finds the YAML node a path points at, so every problem carries a line and column. */
import type { Document, LineCounter, Node, Pair, YAMLMap } from 'yaml';
import { isAlias, isMap, isScalar, isSeq } from 'yaml';

export interface Position {
  readonly line: number;
  readonly col: number;
}

function keyText(key: unknown): string | undefined {
  // A merge key's value is a symbol; its source text is `<<`.
  if (isScalar(key)) return typeof key.value === 'symbol' ? key.source : String(key.value);
  return typeof key === 'string' || typeof key === 'number' ? String(key) : undefined;
}

function startOf(node: unknown): number | undefined {
  return (node as Node | null)?.range?.[0];
}

/** An empty value (`key:`) has a zero-width range after the key; point at the key instead. */
function isEmptyScalar(node: unknown): boolean {
  return isScalar(node) && node.value === null && node.source === '';
}

/** The pair for `key` in a mapping, or in the mappings it merges with `<<: *anchor` (the anchor's own node). */
function findPair(doc: Document, map: YAMLMap, key: string, depth = 0): Pair | undefined {
  const own = map.items.find((item) => keyText(item.key) === key);
  if (own !== undefined || depth > 10) return own;
  for (const item of map.items) {
    if (keyText(item.key) !== '<<') continue;
    const sources = isSeq(item.value) ? item.value.items : [item.value];
    for (const source of sources) {
      const target = isAlias(source) ? source.resolve(doc) : source;
      const found = isMap(target) ? findPair(doc, target, key, depth + 1) : undefined;
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * Offset of the node at `path`: the value itself; its key when `target` is 'key' (unknown keys); the nearest
 * existing ancestor mapping when the path does not exist (missing keys).
 */
export function offsetOf(doc: Document, path: readonly PropertyKey[], target?: 'key'): number {
  let node: unknown = doc.contents;
  let best = startOf(node) ?? 0;
  for (const [position, segment] of path.entries()) {
    if (isAlias(node)) node = node.resolve(doc);
    let pair: Pair | undefined;
    if (isMap(node)) {
      pair = findPair(doc, node, String(segment));
      node = pair?.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
    } else {
      return best;
    }
    const last = position === path.length - 1;
    if (pair !== undefined && (isEmptyScalar(node) || node === null || (last && target === 'key'))) {
      return startOf(pair.key) ?? best;
    }
    const start = startOf(node);
    if (start === undefined) return best;
    best = start;
  }
  return best;
}

export function positionOf(
  doc: Document,
  lineCounter: LineCounter,
  path: readonly PropertyKey[],
  target?: 'key',
): Position {
  return lineCounter.linePos(offsetOf(doc, path, target));
}
