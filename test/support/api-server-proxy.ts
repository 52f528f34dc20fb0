/**
 * A plain-HTTP proxy on 127.0.0.1 in front of the test Kubernetes API server (HTTPS): it forwards every request
 * unchanged, and lets its user look at each request first, answer it instead of the API server, or watch the API
 * server's answer go by. The fault proxy of the informer suite and the counting proxy of the Kubernetes benchmark are
 * both built on it, so both forward alike (watch headers passed on at once, both sides torn down together).
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/**
 * Sees each request before it is forwarded. 'answered': it wrote the response itself and nothing is forwarded;
 * a function: it is given the API server's response before that is passed to the client, and when it returns a
 * promise the answer is held until that settles (the API server has acted, the client does not know yet);
 * undefined: forward only.
 */
export type ProxyRequestHook = (
  req: IncomingMessage,
  res: ServerResponse,
) => 'answered' | ((upstream: IncomingMessage) => void | Promise<void>) | undefined;

export interface ApiServerProxyOptions {
  /** The API server's URL and the CA that signed its certificate. */
  readonly target: string;
  readonly caCert: string;
  /** Sockets to the API server at most; default Node's (unlimited). */
  readonly maxSockets?: number;
  readonly onRequest?: ProxyRequestHook;
}

export interface ApiServerProxy {
  readonly url: string;
  /** A client config that reaches the API server through the proxy with `token`. */
  kubeConfig(token: string): KubeConfig;
  close(): Promise<void>;
}

export async function startApiServerProxy(options: ApiServerProxyOptions): Promise<ApiServerProxy> {
  const upstream = new URL(options.target);
  const agent = new https.Agent({
    ca: options.caCert,
    keepAlive: true,
    ...(options.maxSockets === undefined ? {} : { maxSockets: options.maxSockets }),
  });

  const server = http.createServer((req, res) => {
    const hook = options.onRequest?.(req, res);
    if (hook === 'answered') return;
    const forward = https.request(
      {
        agent,
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (up) => {
        const held = hook?.(up);
        const answer = () => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          // A watch sends its headers before any event: pass them on at once, as the API server does.
          res.flushHeaders();
          up.pipe(res);
        };
        if (held) void held.then(answer, answer);
        else answer();
      },
    );
    forward.on('error', () => res.destroy());
    res.on('close', () => forward.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    kubeConfig(token) {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        // client-node refuses plain http unless TLS verification is explicitly off (there is no TLS here).
        clusters: [{ name: 'proxy', server: url, skipTLSVerify: true }],
        users: [{ name: 'user', token }],
        contexts: [{ name: 'proxy', cluster: 'proxy', user: 'user' }],
        currentContext: 'proxy',
      });
      return kc;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
