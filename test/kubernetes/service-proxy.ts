/**
 * The webhook Service in front of several controller replicas, as Kubernetes runs it: requests go only to replicas
 * whose readiness probe (/readyz) passed at the last probe; with none ready the caller gets 503 (GitHub records a
 * failed delivery). Probes run every `periodMs`, and one failure takes a replica out.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServiceProxy {
  readonly url: string;
  /** Requests answered 503 because no replica was ready. */
  readonly refused: number;
  /** Backends ready at the last probe. */
  ready(): readonly string[];
  close(): Promise<void>;
}

export async function startServiceProxy(backends: readonly string[], periodMs = 500): Promise<ServiceProxy> {
  let ready: string[] = [];
  let refused = 0;
  let next = 0;
  const probe = async () => {
    const results = await Promise.all(
      backends.map(async (b) => {
        try {
          const res = await fetch(`${b}/readyz`, { signal: AbortSignal.timeout(periodMs * 2) });
          await res.body?.cancel();
          return res.status === 200;
        } catch {
          return false;
        }
      }),
    );
    ready = backends.filter((_, i) => results[i]);
  };
  await probe();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, periodMs));
      await probe();
    }
  })();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = ready.length > 0 ? ready[next++ % ready.length] : undefined;
      if (target === undefined) {
        refused++;
        res.writeHead(503).end('no ready endpoint');
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === 'string' && k !== 'host' && k !== 'content-length' && k !== 'connection')
          headers[k] = v;
      }
      fetch(`${target}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers,
        ...(req.method === 'GET' || req.method === 'HEAD' ? {} : { body: Buffer.concat(chunks) }),
        signal: AbortSignal.timeout(10_000),
      })
        .then(async (upstream) => {
          const body = Buffer.from(await upstream.arrayBuffer());
          res.writeHead(upstream.status, {
            'content-type': upstream.headers.get('content-type') ?? 'text/plain',
          });
          res.end(body);
        })
        .catch(() => {
          res.writeHead(502).end('upstream failed');
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get refused() {
      return refused;
    },
    ready: () => ready,
    async close() {
      stopped = true;
      await loop;
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
