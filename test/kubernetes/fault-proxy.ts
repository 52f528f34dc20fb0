/**
 * A plain-HTTP proxy on 127.0.0.1 in front of the test API server that forwards every request unchanged, except
 * the faults a test arms: the next watch answered with the API server's own "410 Gone" forms (an ERROR event in a
 * 200 stream, or an HTTP 410), or the next requests failed with HTTP 500. It lets a suite drive the rare paths of
 * the pod informer (relist after compaction, backoff after errors) deterministically, with a real API server behind.
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
    close: () => proxy.close(),
  };
}
