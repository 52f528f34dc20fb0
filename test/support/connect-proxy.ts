/**
 * A small forward HTTP proxy on 127.0.0.1, like the egress proxy of a locked-down cluster: CONNECT tunnels for
 * https:// (it sees only host:port, never the traffic) and absolute-form requests for http://, optionally behind
 * Basic authentication (407 otherwise). It records what it was asked for, so a test can prove that traffic went
 * through it.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface ProxyRequestRecord {
  readonly method: string;
  /** `host:port` for CONNECT, the absolute URL otherwise. */
  readonly target: string;
  /** The status the proxy answered (200 for an opened tunnel). */
  readonly status: number;
}

export interface ConnectProxy {
  /** http://127.0.0.1:PORT (no credentials). */
  readonly url: string;
  readonly requests: readonly ProxyRequestRecord[];
  /** Connections through a tunnel that are still open. */
  openTunnels(): number;
  close(): Promise<void>;
}

export interface ConnectProxyOptions {
  /** Require `Proxy-Authorization: Basic` with these credentials. */
  readonly credentials?: { readonly user: string; readonly password: string };
  /** Refuse tunnels to these `host:port` targets with 403. */
  readonly deny?: readonly string[];
}

export async function startConnectProxy(options: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const requests: ProxyRequestRecord[] = [];
  const sockets = new Set<net.Socket>();
  const expected = options.credentials
    ? `Basic ${Buffer.from(`${options.credentials.user}:${options.credentials.password}`).toString('base64')}`
    : undefined;
  const authorized = (header: string | undefined) => expected === undefined || header === expected;

  const server = http.createServer((req, res) => {
    const target = req.url ?? '';
    if (!authorized(req.headers['proxy-authorization'])) {
      requests.push({ method: req.method ?? '', target, status: 407 });
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test-proxy"' }).end();
      return;
    }
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      requests.push({ method: req.method ?? '', target, status: 400 });
      res.writeHead(400).end('absolute-form request expected');
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const upstream = http.request(
      {
        hostname: url.hostname,
        port: url.port || 80,
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers,
      },
      (answer) => {
        requests.push({ method: req.method ?? '', target, status: answer.statusCode ?? 0 });
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.once('error', () => {
      requests.push({ method: req.method ?? '', target, status: 502 });
      if (!res.headersSent) res.writeHead(502).end();
    });
    req.pipe(upstream);
  });

  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const target = req.url ?? '';
    const refuse = (status: number, extra = '') => {
      requests.push({ method: 'CONNECT', target, status });
      client.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${extra}Content-Length: 0\r\n\r\n`);
    };
    if (!authorized(req.headers['proxy-authorization'])) {
      refuse(407, 'Proxy-Authenticate: Basic realm="test-proxy"\r\n');
      return;
    }
    if (options.deny?.includes(target)) {
      refuse(403);
      return;
    }
    const colon = target.lastIndexOf(':');
    const host = target.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(target.slice(colon + 1));
    const upstream = net.connect({ host, port }, () => {
      requests.push({ method: 'CONNECT', target, status: 200 });
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    upstream.once('error', () => {
      if (!client.writableEnded && !upstream.readable) refuse(502);
      client.destroy();
    });
    client.once('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
  });
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    openTunnels: () => [...sockets].filter((s) => !s.destroyed).length,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
