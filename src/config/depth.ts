/**
 * A nesting limit for fleet.yaml, checked on the parser's token tree before anything recursive (composing the
 * document, converting it, the schema) walks it: a 10,000-deep nesting would otherwise end in "Maximum call stack
 * size exceeded" instead of a problem with a line and column.
 */
import { Parser } from 'yaml';

/** Deepest nesting of mappings and sequences accepted; a real fleet.yaml needs about ten. */
export const MAX_YAML_DEPTH = 64;

interface CstItem {
  readonly key?: unknown;
  readonly value?: unknown;
}

interface CstNode {
  readonly type?: string;
  readonly offset?: number;
  readonly value?: unknown;
  readonly items?: readonly CstItem[];
}

const COLLECTIONS = new Set(['block-map', 'block-seq', 'flow-collection']);

/** Offset of the first collection nested deeper than `max`, or null. Iterative: any depth is safe. */
export function tooDeepAt(text: string, max: number = MAX_YAML_DEPTH): number | null {
  const stack: [CstNode, number][] = [];
  for (const token of new Parser().parse(text)) stack.push([token as CstNode, 0]);
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    const here = COLLECTIONS.has(node.type ?? '') ? depth + 1 : depth;
    if (here > max) return node.offset ?? 0;
    if (node.value !== undefined) stack.push([node.value as CstNode, here]);
    for (const item of node.items ?? []) {
      if (item.key !== undefined) stack.push([item.key as CstNode, here]);
      if (item.value !== undefined) stack.push([item.value as CstNode, here]);
    }
  }
  return null;
}
