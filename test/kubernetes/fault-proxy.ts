/**
 * A plain-HTTP proxy on 127.0.0.1 in front of the test API server that forwards every request unchanged, except
 * the faults a test arms: the next watch answered with the API server's own "410 Gone" forms (an ERROR event in a
 * 200 stream, or an HTTP 410), the next requests failed with HTTP 500, or the answer to a write held back. It lets a
 * suite drive rare paths (the pod informer's relist after compaction and backoff after errors, a leader stopping
 * while its renewal is in flight) deterministically, with a real API server behind.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { startApiServerProxy } from '../support/api-server-proxy.js';

export interface FaultProxy {
  readonly url: string;
  kubeConfig(token: string): KubeConfig;
  /**
   * The next watch request gets a 410: as an ERROR event (what the API server sends) or as an HTTP status. With
   * `after`, the answer waits for that promise: the client is blind meanwhile, as after a long disconnection.
   */
  goneOnNextWatch(form?: 'event' | 'status', after?: Promise<void>): void;
  /** The next `count` requests (any) get HTTP 500. */
  failNext(count: number): void;
  /**
   * The next request with this method whose path contains `path` is forwarded, but the API server's answer is held
   * from the client until `until` settles: the write has happened, the client does not know it yet. Resolves once
   * the API server has answered (and the answer is being held).
   */
  holdNextAnswer(method: string, path: string, until: Promise<void>): Promise<void>;
  readonly counts: { watches: number; lists: number; injected: number };
  close(): Promise<void>;
}

const GONE_STATUS = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'too old resource version: 1 (1000)',
  reason: 'Expired',
  code: 410,
};

export async function startFaultProxy(target: string, caCert: string): Promise<FaultProxy> {
  let gone: { form: 'event' | 'status'; after: Promise<void> } | undefined;
  let failures = 0;
  let hold: { method: string; path: string; until: Promise<void>; answered: () => void } | undefined;
  const counts = { watches: 0, lists: 0, injected: 0 };

  const proxy = await startApiServerProxy({
    target,
    caCert,
    onRequest: (req, res) => {
      const isWatch = /[?&]watch=(true|1)/.test(req.url ?? '');
      if (req.method === 'GET') {
        if (isWatch) counts.watches++;
        else counts.lists++;
      }
      if (failures > 0) {
        failures--;
        counts.injected++;
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ ...GONE_STATUS, message: 'injected failure', reason: 'InternalError', code: 500 }),
        );
        return 'answered';
      }
      if (hold && req.method === hold.method && (req.url ?? '').includes(hold.path)) {
        const { until, answered } = hold;
        hold = undefined;
        counts.injected++;
        return () => {
          answered();
          return until;
        };
      }
      if (isWatch && gone) {
        const { form, after } = gone;
        gone = undefined;
        counts.injected++;
        void after.then(() => {
          if (form === 'status') {
            res.writeHead(410, { 'content-type': 'application/json' });
            res.end(JSON.stringify(GONE_STATUS));
          } else {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(`${JSON.stringify({ type: 'ERROR', object: GONE_STATUS })}\n`);
          }
        });
        return 'answered';
      }
      return undefined;
    },
  });

  return {
    url: proxy.url,
    counts,
    kubeConfig: (token) => proxy.kubeConfig(token),
    goneOnNextWatch(form = 'event', after = Promise.resolve()) {
      gone = { form, after };
    },
    failNext(count) {
      failures = count;
    },
    holdNextAnswer(method, path, until) {
      return new Promise<void>((answered) => {
        hold = { method, path, until, answered };
      });
    },
    close: () => proxy.close(),
  };
}
