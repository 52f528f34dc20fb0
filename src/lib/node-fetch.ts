/**
 * A fetch over node:http and node:https for what Node's built-in fetch cannot do without extra packages: go through
 * an HTTP proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) and trust extra certificate authorities (a private CA). Enough
 * of fetch for REST clients: method, headers, a buffered request body, redirects, abort signals, a streamed response
 * body, gzip/deflate/br decoding. Connections are kept alive per destination.
 *
 * It is also the cheaper fetch for the controller's own REST calls (GitHub, the simulator's compute API): Node's
 * built-in fetch costs two to three times the CPU of a node:http exchange per request on loopback (WHATWG streams
 * for the request body and the response, one timer hop each). Here a string or byte body is written in one go and a
 * small response with a known length is read whole into the Response, so no stream is built on either side; a
 * request sent on a kept-alive connection that the server had closed meanwhile (ECONNRESET before any answer) is
 * sent once more on a new one when its method is idempotent.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import zlib from 'node:zlib';
import type { CallSignal } from './async.js';
import type { ProxySettings } from './proxy.js';
import { ProxyTunnelAgent, describeProxy, proxyAuthorization, proxyFor } from './proxy.js';

export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface NodeFetchOptions {
  /** Proxies to use; none: every request goes direct. */
  readonly proxy?: ProxySettings;
  /** PEM certificates trusted in addition to Node's default roots (servers and https:// proxies). */
  readonly ca?: string;
  /** Redirects followed before failing; default 10. */
  readonly maxRedirects?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY = new Set([101, 204, 205, 304]);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** A response body up to this size with a Content-Length is read whole before the Response is made. */
const BUFFERED_BYTES = 1024 * 1024;

/** Responses whose body was read whole before they were made: nothing of them is left on the network. */
const READ_WHOLE = new WeakSet<Response>();

/**
 * Whether a response's body is already in memory (read whole by this fetch), so nothing of the request is still
 * on its way: its signal and timeout can go. A streamed body, or another fetch's response, is still being read.
 */
export function bodyInMemory(response: Response): boolean {
  return READ_WHOLE.has(response);
}

/**
 * Ends a call (lib/async's callSignal) once its fetch has settled with `response`, or with none when it failed: all
 * of it when there is nothing more to read or the body is in memory; otherwise its long-lived sources only, so its
 * timeout still bounds reading the body.
 */
export function releaseAnswered(call: CallSignal, response: Response | undefined): void {
  if (response === undefined || bodyInMemory(response)) call.release();
  else call.releaseSources();
}

/** A fetch that honours `proxy` and `ca`; `close()` frees its kept-alive connections. */
export function createNodeFetch(options: NodeFetchOptions = {}): Fetch & { close(): void } {
  const ca = options.ca === undefined ? undefined : [...rootCertificates, options.ca];
  const tlsOptions = ca ? { ca } : {};
  const direct = {
    http: new http.Agent({ keepAlive: true }),
    https: new https.Agent({ keepAlive: true, ...tlsOptions }),
  };
  const tunnels = new Map<string, ProxyTunnelAgent>();
  const forwarders = new Map<string, http.Agent | https.Agent>();
  const maxRedirects = options.maxRedirects ?? 10;

  /** How to reach `url`: which agent, and for http:// through a proxy, the proxy to send the absolute URL to. */
  function route(url: URL): { agent: http.Agent; via?: URL } {
    const proxy = options.proxy ? proxyFor(url, options.proxy) : undefined;
    if (proxy === undefined) return { agent: url.protocol === 'https:' ? direct.https : direct.http };
    if (url.protocol === 'https:') {
      let agent = tunnels.get(proxy.href);
      if (!agent) {
        agent = new ProxyTunnelAgent(proxy, { keepAlive: true, ...tlsOptions });
        tunnels.set(proxy.href, agent);
      }
      return { agent };
    }
    let agent = forwarders.get(proxy.href);
    if (!agent) {
      agent =
        proxy.protocol === 'https:'
          ? new https.Agent({ keepAlive: true, ...tlsOptions })
          : new http.Agent({ keepAlive: true });
      forwarders.set(proxy.href, agent);
    }
    return { agent, via: proxy };
  }

  function once(
    url: URL,
    method: string,
    headers: Headers,
    body: Buffer | undefined,
    signal: AbortSignal | undefined,
  ): Promise<http.IncomingMessage> {
    const { agent, via } = route(url);
    const outgoing: Record<string, string> = {};
    headers.forEach((value, name) => {
      outgoing[name] = value;
    });
    if (body !== undefined) outgoing['content-length'] = String(body.length);
    const target = via ?? url;
    if (via) {
      const auth = proxyAuthorization(via);
      if (auth) outgoing['proxy-authorization'] = auth;
    }
    const request = (target.protocol === 'https:' ? https : http).request({
      protocol: target.protocol,
      hostname: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port || (target.protocol === 'https:' ? 443 : 80),
      // Through a forwarding proxy an http:// request names the whole URL.
      path: via ? url.href : `${url.pathname}${url.search}`,
      method,
      headers: via ? { ...outgoing, host: url.host } : outgoing,
      agent,
      ...(signal ? { signal } : {}),
    });
    return new Promise((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', (error) => {
        // A kept-alive connection the server closed while it was idle: the request never reached it.
        if (
          request.reusedSocket &&
          (error as NodeJS.ErrnoException).code === 'ECONNRESET' &&
          IDEMPOTENT.has(method) &&
          !signal?.aborted
        ) {
          once(url, method, headers, body, signal).then(resolve, reject);
          return;
        }
        // Name the proxy (never its credentials) when it is the one in the way.
        if (via && !signal?.aborted) {
          reject(
            new Error(`request through proxy ${describeProxy(via)} failed: ${error.message}`, {
              cause: error,
            }),
          );
        } else reject(error);
      });
      request.end(body);
    });
  }

  function toResponse(
    url: URL,
    method: string,
    response: http.IncomingMessage,
    signal: AbortSignal | undefined,
  ): Response | Promise<Response> {
    const headers = new Headers();
    const raw = response.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
    const status = response.statusCode ?? 502;
    const length = Number(response.headers['content-length'] ?? NaN);
    if (
      response.headers['content-encoding'] === undefined &&
      length >= 0 &&
      length <= BUFFERED_BYTES &&
      !NULL_BODY.has(status) &&
      method !== 'HEAD'
    ) {
      return readWhole(response, signal).then((bytes) => {
        const result = new Response(bytes, {
          status: status < 200 || status > 599 ? 502 : status,
          statusText: response.statusMessage ?? '',
          headers,
        });
        Object.defineProperty(result, 'url', { value: url.href });
        READ_WHOLE.add(result);
        return result;
      });
    }
    let stream: Readable = response;
    const encoding = (headers.get('content-encoding') ?? '').trim().toLowerCase();
    const decoder =
      encoding === 'gzip' || encoding === 'x-gzip'
        ? zlib.createGunzip()
        : encoding === 'deflate'
          ? zlib.createInflate()
          : encoding === 'br'
            ? zlib.createBrotliDecompress()
            : undefined;
    if (decoder) {
      response.once('error', (error) => decoder.destroy(error));
      stream = response.pipe(decoder);
      headers.delete('content-encoding');
      headers.delete('content-length');
    }
    const nullBody = NULL_BODY.has(status) || method === 'HEAD';
    if (nullBody) response.resume();
    const result = new Response(nullBody ? null : (Readable.toWeb(stream) as ReadableStream<Uint8Array>), {
      status: status < 200 || status > 599 ? 502 : status,
      statusText: response.statusMessage ?? '',
      headers,
    });
    Object.defineProperty(result, 'url', { value: url.href });
    return result;
  }

  /** What to send: without building a Request when the input is a URL and the body a string or bytes. */
  async function prepare(
    input: string | URL | Request,
    init: RequestInit | undefined,
  ): Promise<{
    url: URL;
    method: string;
    headers: Headers;
    body?: Buffer;
    redirect: 'follow' | 'error' | 'manual';
  }> {
    const raw = init?.body;
    if (
      !(input instanceof Request) &&
      (raw === undefined || raw === null || typeof raw === 'string' || raw instanceof Uint8Array)
    ) {
      const headers = new Headers(init?.headers);
      const method = (init?.method ?? 'GET').toUpperCase();
      if (raw === undefined || raw === null) {
        return { url: new URL(input), method, headers, redirect: init?.redirect ?? 'follow' };
      }
      if (typeof raw === 'string' && !headers.has('content-type')) {
        headers.set('content-type', 'text/plain;charset=UTF-8');
      }
      const body =
        typeof raw === 'string' ? Buffer.from(raw) : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      return { url: new URL(input), method, headers, body, redirect: init?.redirect ?? 'follow' };
    }
    const request = new Request(input, init);
    return {
      url: new URL(request.url),
      method: request.method.toUpperCase(),
      headers: new Headers(request.headers),
      ...(request.body === null ? {} : { body: Buffer.from(await request.arrayBuffer()) }),
      redirect: request.redirect,
    };
  }

  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const signal = init?.signal ?? undefined;
    signal?.throwIfAborted();
    const prepared = await prepare(input, init);
    let { url, method, body } = prepared;
    const { headers, redirect } = prepared;
    for (let hop = 0; ; hop++) {
      const response = await once(url, method, headers, body, signal ?? undefined);
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (!REDIRECTS.has(status) || location === undefined || redirect === 'manual') {
        return toResponse(url, method, response, signal);
      }
      response.resume();
      if (redirect === 'error') throw new TypeError(`fetch failed: redirected to ${location}`);
      if (hop >= maxRedirects) throw new TypeError(`fetch failed: more than ${maxRedirects} redirects`);
      const next = new URL(location, url);
      // Credentials never follow a redirect to another origin.
      if (next.origin !== url.origin) headers.delete('authorization');
      if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
        method = method === 'HEAD' ? 'HEAD' : 'GET';
        body = undefined;
        headers.delete('content-type');
      }
      url = next;
    }
  };
  return Object.assign(fetch, {
    close() {
      direct.http.destroy();
      direct.https.destroy();
      for (const agent of [...tunnels.values(), ...forwarders.values()]) agent.destroy();
    },
  });
}

/** The whole body of a response; rejects if the connection ends or fails first (an abort included). */
function readWhole(response: http.IncomingMessage, signal: AbortSignal | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    response.once('error', reject);
    response.once('close', () => {
      if (response.complete) return;
      reject(
        signal?.aborted
          ? (signal.reason as Error)
          : new Error('the connection closed before the response body was complete'),
      );
    });
  });
}
