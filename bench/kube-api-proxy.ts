/**
 * A plain-HTTP proxy in front of the Kubernetes API server that counts what the controller sends it: every write
 * (POST, PUT, PATCH, DELETE) by resource, server-side dry runs apart, and the names of the pods its LISTs and
 * WATCHes delivered. The controller's kubeconfig points here, so the counts are what the API server received from
 * it, independent of the controller's own bookkeeping.
 */
import type { IncomingMessage } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { startApiServerProxy } from '../test/support/api-server-proxy.js';

export interface KubeApiProxy {
  readonly url: string;
  kubeConfig(token: string): KubeConfig;
  /** `POST pods`, `DELETE pods`, `POST secrets`, ... (dry runs under `dry-run POST pods`). */
  readonly writes: ReadonlyMap<string, number>;
  /** When the proxy received the last write of a kind (`POST pods`, ...), performance.now() ms; since the reset. */
  lastWriteAt(key: string): number | undefined;
  /** Pod names LISTs and WATCHes delivered, by namespace. */
  podsSeen(namespace: string): ReadonlySet<string>;
  resetWrites(): void;
  close(): Promise<void>;
}

/** `pods`, `secrets`, `serviceaccounts`, `rolebindings`, ... from an API path (subresources as `pods/status`). */
function resourceOf(path: string): { namespace?: string; resource: string } {
  const clean = path.split('?')[0] ?? '';
  const m = /\/namespaces\/([^/]+)\/([^/]+)(?:\/[^/]+(?:\/([^/]+))?)?$/.exec(clean);
  if (m) return { namespace: m[1], resource: m[3] ? `${m[2]}/${m[3]}` : (m[2] as string) };
  const parts = clean.split('/').filter(Boolean);
  return { resource: parts.at(-1) ?? clean };
}

/** `trackPodsIn`: namespaces whose pod LISTs and WATCHes are read for `podsSeen` (parsing costs CPU: only those). */
export async function startKubeApiProxy(
  target: string,
  caCert: string,
  trackPodsIn: readonly string[] = [],
): Promise<KubeApiProxy> {
  const writes = new Map<string, number>();
  const lastWrites = new Map<string, number>();
  const pods = new Map<string, Set<string>>();
  const seen = (namespace: string, name: unknown) => {
    if (typeof name !== 'string') return;
    let set = pods.get(namespace);
    if (!set) pods.set(namespace, (set = new Set()));
    set.add(name);
  };

  /** Reads the pod names out of a LIST answer, or out of each ADDED or MODIFIED event of a WATCH. */
  const readPods = (namespace: string, isWatch: boolean, up: IncomingMessage): void => {
    if ((up.statusCode ?? 0) >= 300) return;
    let buffered = '';
    up.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      if (!isWatch) return;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const event = JSON.parse(line) as {
            type?: string;
            object?: { metadata?: { name?: unknown } };
          };
          if (event.type === 'ADDED' || event.type === 'MODIFIED')
            seen(namespace, event.object?.metadata?.name);
        } catch {
          // not an event line
        }
      }
    });
    up.on('end', () => {
      if (isWatch || buffered === '') return;
      try {
        const list = JSON.parse(buffered) as { items?: { metadata?: { name?: unknown } }[] };
        for (const item of list.items ?? []) seen(namespace, item.metadata?.name);
      } catch {
        // not a list
      }
    });
  };

  const proxy = await startApiServerProxy({
    target,
    caCert,
    maxSockets: 64,
    onRequest: (req) => {
      const path = req.url ?? '/';
      const { namespace, resource } = resourceOf(path);
      const method = req.method ?? 'GET';
      if (method !== 'GET') {
        const key = `${/[?&]dryRun=/.test(path) ? 'dry-run ' : ''}${method} ${resource}`;
        writes.set(key, (writes.get(key) ?? 0) + 1);
        lastWrites.set(key, performance.now());
      }
      const watchesPods =
        method === 'GET' && resource === 'pods' && namespace !== undefined && trackPodsIn.includes(namespace);
      if (!watchesPods) return undefined;
      const isWatch = /[?&]watch=(true|1)/.test(path);
      return (up) => readPods(namespace, isWatch, up);
    },
  });
  return {
    url: proxy.url,
    writes,
    podsSeen: (namespace) => pods.get(namespace) ?? new Set(),
    lastWriteAt: (key) => lastWrites.get(key),
    resetWrites: () => {
      writes.clear();
      lastWrites.clear();
    },
    kubeConfig: (token) => proxy.kubeConfig(token),
    close: () => proxy.close(),
  };
}
