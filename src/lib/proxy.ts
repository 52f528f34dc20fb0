/**
 * Outbound HTTP proxies as curl and most tools read them: HTTPS_PROXY / HTTP_PROXY (or their lower-case forms, which
 * win) and NO_PROXY, and an https.Agent that reaches a host through a proxy's CONNECT tunnel. Node's fetch and the
 * AWS SDK ignore these variables; what uses them is given the environment (read by the CLI) and builds agents here.
 */
import net, { isIP } from 'node:net';
import type { Socket } from 'node:net';
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

export interface ProxySettings {
  /** Proxy for https:// URLs. */
  readonly httpsProxy?: URL;
  /** Proxy for http:// URLs. */
  readonly httpProxy?: URL;
  /** NO_PROXY entries, lower case: `*`, host names (and their subdomains), `.domain`, `host:port`, IPs, IPv4 CIDRs. */
  readonly noProxy: readonly string[];
}

export type ProxyErrorCode = 'proxy-invalid-url' | 'proxy-connect-failed' | 'proxy-auth-required';

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  readonly code: ProxyErrorCode;
  constructor(code: ProxyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A proxy URL without its credentials, for messages. */
export function describeProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

function parseProxyUrl(name: string, value: string): URL {
  // `proxy:3128` is common in the wild and means http://proxy:3128.
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch (error) {
    throw new ProxyError('proxy-invalid-url', `${name} is not a URL`, { cause: error });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProxyError(
      'proxy-invalid-url',
      `${name} must be an http:// or https:// URL, not ${url.protocol}`,
    );
  }
  return url;
}

/** The proxy settings of an environment (the CLI passes process.env). Throws ProxyError on a malformed URL. */
export function proxySettingsFromEnv(env: Readonly<Record<string, string | undefined>>): ProxySettings {
  const pick = (...names: string[]) => {
    for (const name of names) {
      const value = env[name]?.trim();
      if (value) return { name, value };
    }
    return undefined;
  };
  const https = pick('https_proxy', 'HTTPS_PROXY');
  const http = pick('http_proxy', 'HTTP_PROXY');
  const no = pick('no_proxy', 'NO_PROXY');
  return {
    ...(https ? { httpsProxy: parseProxyUrl(https.name, https.value) } : {}),
    ...(http ? { httpProxy: parseProxyUrl(http.name, http.value) } : {}),
    noProxy: (no?.value ?? '')
      .split(/[\s,]+/)
      .map((entry) => entry.trim().toLowerCase())
      .filter((entry) => entry !== ''),
  };
}

function ipv4ToNumber(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function inCidr(host: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (isIP(host) !== 4 || isIP(base ?? '') !== 4 || !Number.isInteger(bits) || bits < 0 || bits > 32)
    return false;
  const block = 2 ** (32 - bits);
  return Math.floor(ipv4ToNumber(host) / block) === Math.floor(ipv4ToNumber(base!) / block);
}

function defaultPort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

/** Whether NO_PROXY exempts this URL. */
export function bypassesProxy(url: URL, noProxy: readonly string[]): boolean {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = defaultPort(url);
  for (const raw of noProxy) {
    if (raw === '*') return true;
    if (raw.includes('/')) {
      if (inCidr(host, raw)) return true;
      continue;
    }
    // host:port (an IPv6 literal only in brackets: [::1]:8080)
    let entry = raw;
    let entryPort: string | undefined;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracketed) {
      entry = bracketed[1]!;
      entryPort = bracketed[2];
    } else if (isIP(entry) !== 6) {
      const colon = entry.lastIndexOf(':');
      if (colon > 0 && /^\d+$/.test(entry.slice(colon + 1))) {
        entryPort = entry.slice(colon + 1);
        entry = entry.slice(0, colon);
      }
    }
    if (entryPort !== undefined && entryPort !== port) continue;
    entry = entry.replace(/^\*?\./, '');
    if (host === entry || (isIP(host) === 0 && host.endsWith(`.${entry}`))) return true;
  }
  return false;
}

/** The proxy a request to `url` goes through, or undefined for a direct connection. */
export function proxyFor(url: URL, settings: ProxySettings): URL | undefined {
  const proxy = url.protocol === 'https:' ? settings.httpsProxy : settings.httpProxy;
  if (proxy === undefined || bypassesProxy(url, settings.noProxy)) return undefined;
  return proxy;
}

/** `Proxy-Authorization` for a proxy URL with credentials (`http://user:pass@proxy:3128`). */
export function proxyAuthorization(proxy: URL): string | undefined {
  if (proxy.username === '' && proxy.password === '') return undefined;
  const user = decodeURIComponent(proxy.username);
  const password = decodeURIComponent(proxy.password);
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

const MAX_CONNECT_RESPONSE = 16 * 1024;

export interface TunnelOptions {
  /** Give up on the proxy (connect and CONNECT answer) after this long. Default 10 s. */
  readonly connectTimeoutMs?: number;
}

/**
 * Opens a CONNECT tunnel to `host:port` through `proxy` and hands back the raw socket once the proxy answered 2xx.
 * The proxy's own TLS (an https:// proxy) is verified with `ca` when given.
 */
export function openTunnel(
  proxy: URL,
  host: string,
  port: number,
  options: TunnelOptions & { readonly ca?: string | readonly string[] } = {},
): Promise<Socket> {
  const target = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  const proxyPort = Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80));
  const where = describeProxy(proxy);
  return new Promise<Socket>((resolve, reject) => {
    const socket: Socket =
      proxy.protocol === 'https:'
        ? tls.connect({
            host: proxy.hostname,
            port: proxyPort,
            servername: isIP(proxy.hostname) === 0 ? proxy.hostname : '',
            ...(options.ca !== undefined ? { ca: options.ca as string[] } : {}),
          })
        : net.connect({ host: proxy.hostname.replace(/^\[|\]$/g, ''), port: proxyPort });
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () =>
        fail(
          new ProxyError(
            'proxy-connect-failed',
            `proxy ${where} did not open a tunnel to ${target} within ${options.connectTimeoutMs ?? 10_000} ms`,
          ),
        ),
      options.connectTimeoutMs ?? 10_000,
    );
    socket.once('error', (error) =>
      fail(
        new ProxyError('proxy-connect-failed', `cannot reach proxy ${where}: ${(error as Error).message}`, {
          cause: error,
        }),
      ),
    );
    socket.once('close', () =>
      fail(new ProxyError('proxy-connect-failed', `proxy ${where} closed the connection to ${target}`)),
    );
    socket.once(proxy.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      const auth = proxyAuthorization(proxy);
      socket.write(
        `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n` +
          (auth ? `Proxy-Authorization: ${auth}\r\n` : '') +
          '\r\n',
      );
    });
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) {
        if (received.length > MAX_CONNECT_RESPONSE) {
          fail(new ProxyError('proxy-connect-failed', `proxy ${where} sent an oversized CONNECT answer`));
        }
        return;
      }
      socket.off('data', onData);
      const statusLine = received.subarray(0, received.indexOf('\r\n')).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
      if (status === 407) {
        fail(
          new ProxyError(
            'proxy-auth-required',
            `proxy ${where} requires authentication (407); give the credentials in the proxy URL`,
          ),
        );
        return;
      }
      if (!(status >= 200 && status < 300)) {
        fail(
          new ProxyError(
            'proxy-connect-failed',
            `proxy ${where} refused the tunnel to ${target}: ${statusLine.slice(0, 200)}`,
          ),
        );
        return;
      }
      const rest = received.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

type ConnectionOptions = tls.ConnectionOptions & {
  host?: string;
  port?: number | string;
  servername?: string;
};

/** Which proxy (if any) a connection to host:port goes through. */
type ProxyRoute = (host: string, port: number) => URL | undefined;

/**
 * An https.Agent that asks `route` for each connection: without a proxy it connects directly; with one it opens the
 * proxy's CONNECT tunnel, then speaks TLS to the host itself (the proxy sees only the host name and port). Pass it
 * wherever Node takes an agent: node:https, the AWS SDK's NodeHttpHandler (`httpsAgent`).
 */
class TunnellingHttpsAgent extends https.Agent {
  readonly #route: ProxyRoute;
  readonly #tunnel: TunnelOptions & { readonly ca?: string | readonly string[] };

  constructor(route: ProxyRoute, options: https.AgentOptions & TunnelOptions) {
    super(options);
    this.#route = route;
    this.#tunnel = {
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      ...(options.ca !== undefined ? { ca: options.ca as string | string[] } : {}),
    };
  }

  /** Node's Agent accepts a connection handed to a callback: the tunnel is opened first, then TLS over it. */
  override createConnection(
    options: http.RequestOptions,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const connection = options as ConnectionOptions;
    const host = String(connection.host ?? 'localhost');
    const port = Number(connection.port ?? 443);
    const proxy = this.#route(host, port);
    if (proxy === undefined) return tls.connect(connection);
    openTunnel(proxy, host, port, this.#tunnel).then(
      (raw) =>
        callback?.(
          null,
          tls.connect({
            ...connection,
            socket: raw,
            servername: connection.servername ?? (isIP(host) === 0 ? host : ''),
          }),
        ),
      (error: Error) => callback?.(error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/** Every host through `proxy`'s CONNECT tunnel. */
export class ProxyTunnelAgent extends TunnellingHttpsAgent {
  constructor(proxy: URL, options: https.AgentOptions & TunnelOptions = {}) {
    super(() => proxy, options);
  }
}

/**
 * Decides per connection, from HTTPS_PROXY / HTTP_PROXY / NO_PROXY: a host NO_PROXY exempts is reached directly, any
 * other through the proxy's CONNECT tunnel. For clients that take agents rather than a fetch (the AWS SDK's
 * NodeHttpHandler: `httpsAgent`, `httpAgent`).
 */
export class EnvProxyHttpsAgent extends TunnellingHttpsAgent {
  constructor(settings: ProxySettings, options: https.AgentOptions & TunnelOptions = {}) {
    super(
      (host, port) => proxyFor(new URL(`https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`), settings),
      options,
    );
  }
}

/** The plain-HTTP counterpart of EnvProxyHttpsAgent (HTTP_PROXY; the tunnel carries the request unchanged). */
export class EnvProxyHttpAgent extends http.Agent {
  readonly #settings: ProxySettings;
  readonly #tunnel: TunnelOptions;

  constructor(settings: ProxySettings, options: http.AgentOptions & TunnelOptions = {}) {
    super(options);
    this.#settings = settings;
    this.#tunnel =
      options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {};
  }

  override createConnection(
    options: http.RequestOptions,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const host = String(options.host ?? 'localhost');
    const port = Number(options.port ?? 80);
    const proxy = proxyFor(
      new URL(`http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`),
      this.#settings,
    );
    if (proxy === undefined) return net.connect({ host, port });
    openTunnel(proxy, host, port, this.#tunnel).then(
      (raw) => callback?.(null, raw),
      (error: Error) => callback?.(error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/** Agents for the AWS SDK when a proxy variable is set, else undefined (the SDK's own agents then). */
export function envProxyAgents(
  env: Readonly<Record<string, string | undefined>>,
  options: http.AgentOptions & TunnelOptions = {},
): { readonly httpsAgent: EnvProxyHttpsAgent; readonly httpAgent: EnvProxyHttpAgent } | undefined {
  const settings = proxySettingsFromEnv(env);
  if (settings.httpsProxy === undefined && settings.httpProxy === undefined) return undefined;
  return {
    httpsAgent: new EnvProxyHttpsAgent(settings, options),
    httpAgent: new EnvProxyHttpAgent(settings, options),
  };
}
