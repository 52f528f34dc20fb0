/**
 * `toLoggable`: any value -> plain JSON data that is safe to serialize into a log line. It is total: it never
 * throws, whatever it is given (Buffers and typed arrays, cycles, getters that throw, Proxies, Errors with causes,
 * Maps and Sets, class instances, huge arrays and strings), and it redacts every property whose name marks a
 * secret at any depth. The logger runs every object it is given through it before pino sees it, so neither pino's
 * serializers nor anything else walks into a value that can blow up.
 */
import { REDACTED, isSecretKey } from './redact.js';

export interface LoggableLimits {
  /** Nesting below this depth becomes `[Object]` / `[Array]`. */
  readonly maxDepth: number;
  /** Properties or items kept per object, array, Map or Set; the rest are counted. */
  readonly maxEntries: number;
  /** Longer strings are cut (after `scrub` ran on the whole string, so a cut cannot split a secret). */
  readonly maxString: number;
  /** Values visited in one call; past it everything becomes `[truncated]` (bounds shared sub-objects too). */
  readonly maxNodes: number;
}

export const LOGGABLE_LIMITS: LoggableLimits = {
  maxDepth: 8,
  maxEntries: 100,
  maxString: 16 * 1024,
  maxNodes: 5_000,
};

export interface LoggableOptions {
  /** Applied to strings that are cut, before the cut; and to numbers, as text, to catch a numeric secret. */
  readonly scrub?: (text: string) => string;
  readonly limits?: Partial<LoggableLimits>;
}

/** Error fields read explicitly (they are often not enumerable). */
const ERROR_FIELDS = ['code', 'statusCode', 'status', 'errno', 'syscall'] as const;

function describeFailure(error: unknown): string {
  try {
    return error instanceof Error ? `${error.name}` : typeof error;
  } catch {
    return 'unknown';
  }
}

function typeName(value: object): string {
  try {
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor
      ?.name;
    return typeof name === 'string' && name !== '' ? name : 'Object';
  } catch {
    return 'Object';
  }
}

function isError(value: object): value is Error {
  try {
    return value instanceof Error || Object.prototype.toString.call(value) === '[object Error]';
  } catch {
    return false;
  }
}

export function toLoggable(value: unknown, options: LoggableOptions = {}): unknown {
  const limits = { ...LOGGABLE_LIMITS, ...options.limits };
  const scrub = options.scrub ?? ((text: string) => text);
  const seen = new Set<object>();
  let visited = 0;

  const str = (text: string): string => {
    if (text.length <= limits.maxString) return text;
    const clean = scrub(text);
    return `${clean.slice(0, limits.maxString)}...[${clean.length - limits.maxString} more characters]`;
  };

  const num = (n: number | bigint): unknown => {
    const text = String(n);
    if (scrub(text) !== text) return REDACTED;
    return typeof n === 'bigint' ? text : n;
  };

  /** Reads one property; a getter that throws becomes a marker. */
  const read = (target: object, key: PropertyKey): unknown => {
    try {
      return (target as Record<PropertyKey, unknown>)[key];
    } catch (error) {
      return `[unreadable: ${describeFailure(error)}]`;
    }
  };

  const entries = (target: object, depth: number, out: Record<string, unknown>, skip?: Set<string>) => {
    let keys: string[];
    try {
      keys = Object.keys(target);
    } catch (error) {
      out['[unreadable]'] = describeFailure(error);
      return;
    }
    let kept = 0;
    for (const key of keys) {
      if (skip?.has(key)) continue;
      if (kept >= limits.maxEntries) {
        out['[more]'] = `${keys.length - kept} more properties`;
        break;
      }
      const item = read(target, key);
      if (item === undefined || typeof item === 'function') continue;
      kept += 1;
      out[key] = isSecretKey(key) ? REDACTED : walk(item, depth + 1);
    }
  };

  const walkError = (error: Error, depth: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    const name = read(error, 'name');
    out.type = typeName(error) === 'Object' && typeof name === 'string' ? name : typeName(error);
    const message = read(error, 'message');
    out.message = typeof message === 'string' ? str(message) : walk(message, depth + 1);
    const stack = read(error, 'stack');
    if (typeof stack === 'string') out.stack = str(stack);
    for (const field of ERROR_FIELDS) {
      const item = read(error, field);
      if (item !== undefined) out[field] = walk(item, depth + 1);
    }
    const skip = new Set(['name', 'message', 'stack', 'cause', 'errors', ...ERROR_FIELDS]);
    entries(error, depth, out, skip);
    const cause = read(error, 'cause');
    if (cause !== undefined) out.cause = walk(cause, depth + 1);
    const errors = read(error, 'errors');
    if (Array.isArray(errors)) out.errors = walk(errors, depth + 1);
    return out;
  };

  const walk = (node: unknown, depth: number): unknown => {
    switch (typeof node) {
      case 'string':
        return str(node);
      case 'number':
        return Number.isFinite(node) ? num(node) : String(node);
      case 'bigint':
        return num(node);
      case 'boolean':
      case 'undefined':
        return node;
      case 'symbol':
        return node.toString();
      case 'function':
        return undefined;
    }
    if (node === null) return null;
    if (++visited > limits.maxNodes) return '[truncated]';
    const object = node as object;
    if (seen.has(object)) return '[Circular]';
    try {
      if (ArrayBuffer.isView(object)) {
        // Never read a Buffer's content: it may be a request's raw bytes (or a secret); its size is enough.
        let length: unknown = '?';
        try {
          length = object.byteLength;
        } catch {
          // A receiver that is not a real view: keep '?'.
        }
        return `[${typeName(object)} ${String(length)} bytes]`;
      }
      if (object instanceof ArrayBuffer || object instanceof SharedArrayBuffer) {
        return `[${typeName(object)} ${object.byteLength} bytes]`;
      }
      if (object instanceof Date) {
        const time = object.getTime();
        return Number.isNaN(time) ? 'Invalid Date' : object.toISOString();
      }
      if (object instanceof RegExp) return String(object);
      if (object instanceof WeakMap || object instanceof WeakSet || object instanceof Promise) {
        return `[${typeName(object)}]`;
      }
    } catch (error) {
      return `[unreadable ${describeFailure(error)}]`;
    }
    if (depth >= limits.maxDepth) return Array.isArray(object) ? '[Array]' : `[${typeName(object)}]`;
    seen.add(object);
    try {
      if (isError(object)) return walkError(object, depth);
      if (Array.isArray(object)) {
        const length = object.length;
        const out: unknown[] = [];
        for (let index = 0; index < Math.min(length, limits.maxEntries); index++) {
          const item = walk(read(object, index), depth + 1);
          out.push(item === undefined ? null : item);
        }
        if (length > limits.maxEntries) out.push(`[${length - limits.maxEntries} more items]`);
        return out;
      }
      if (object instanceof Map) {
        const out: Record<string, unknown> = {};
        let kept = 0;
        for (const [key, item] of object) {
          if (kept++ >= limits.maxEntries) {
            out['[more]'] = `${object.size - limits.maxEntries} more entries`;
            break;
          }
          const name = typeof key === 'string' ? key : String(walk(key, depth + 1));
          out[name] = isSecretKey(name) ? REDACTED : walk(item, depth + 1);
        }
        return out;
      }
      if (object instanceof Set) {
        const out: unknown[] = [];
        for (const item of object) {
          if (out.length >= limits.maxEntries) {
            out.push(`[${object.size - limits.maxEntries} more items]`);
            break;
          }
          out.push(walk(item, depth + 1));
        }
        return out;
      }
      const toJSON = read(object, 'toJSON');
      if (typeof toJSON === 'function') {
        try {
          return walk(toJSON.call(object), depth + 1);
        } catch (error) {
          return `[unserializable ${typeName(object)}: ${describeFailure(error)}]`;
        }
      }
      const out: Record<string, unknown> = {};
      entries(object, depth, out);
      return out;
    } catch (error) {
      return `[unreadable ${describeFailure(error)}]`;
    } finally {
      seen.delete(object);
    }
  };

  try {
    return walk(value, 0);
  } catch (error) {
    return `[unloggable: ${describeFailure(error)}]`;
  }
}
