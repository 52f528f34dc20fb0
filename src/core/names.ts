/**
 * Runner names: `<scale-set>-<8 lower-case letters or digits>`. The suffix is fixed in length and alphabet so that a
 * name belongs to exactly one scale set even when one scale set's name is a prefix of another's (`linux` and
 * `linux-x`: `linux-x-ab12cd34` has the suffix `x-ab12cd34` for `linux`, which is not a valid suffix).
 */
export const NAME_SUFFIX_LENGTH = 8; // runnerName draws exactly this many characters
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const SUFFIX = /^[a-z0-9]{8}$/;

/** A random source in [0, 1): Math.random, or a seeded generator so that planning is reproducible. */
export type RandomSource = () => number;

const CODES = [...ALPHABET].map((c) => c.charCodeAt(0));
const draw = (random: RandomSource): number =>
  CODES[Math.min(CODES.length - 1, Math.floor(random() * CODES.length))]!;

export function runnerName(scaleSet: string, random: RandomSource): string {
  // Built from char codes in one call: a burst plans thousands of names, and appending a character at a time
  // leaves eight intermediate strings per name for the garbage collector.
  const suffix = String.fromCharCode(
    draw(random),
    draw(random),
    draw(random),
    draw(random),
    draw(random),
    draw(random),
    draw(random),
    draw(random),
  );
  return `${scaleSet}-${suffix}`;
}

/** True when `name` is a runner name this fleet would give in `scaleSet`. */
export function isRunnerOf(scaleSet: string, name: string): boolean {
  return (
    name.length === scaleSet.length + 1 + NAME_SUFFIX_LENGTH &&
    name.startsWith(scaleSet) &&
    name[scaleSet.length] === '-' &&
    SUFFIX.test(name.slice(scaleSet.length + 1))
  );
}

/** The scale set (among `scaleSets`) a runner name belongs to, or null. */
export function scaleSetOf(name: string, scaleSets: Iterable<string>): string | null {
  if (name.length <= NAME_SUFFIX_LENGTH + 1) return null;
  const candidate = name.slice(0, name.length - NAME_SUFFIX_LENGTH - 1);
  for (const s of scaleSets) if (s === candidate && isRunnerOf(s, name)) return s;
  return null;
}

/** mulberry32: a small seeded generator for tests, benchmarks and reproducible planning. */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
