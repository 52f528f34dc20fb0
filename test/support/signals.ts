/**
 * What a long-lived AbortSignal keeps of the calls made with it: its abort listeners, and the signals that
 * AbortSignal.any derived from it and still references (Node 20 keeps those in an internal set that only grows; read
 * by its symbol's description, 0 where a Node version keeps none).
 */
import { getEventListeners } from 'node:events';

export function keptBy(signal: AbortSignal): { listeners: number; derived: number } {
  const symbol = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  const set =
    symbol === undefined
      ? undefined
      : (signal as unknown as Record<symbol, Set<unknown> | undefined>)[symbol];
  return { listeners: getEventListeners(signal, 'abort').length, derived: set?.size ?? 0 };
}
