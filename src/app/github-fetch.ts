/**
 * The fetch GitHub requests go through: one over node:http(s) with kept-alive connections (lib/node-fetch.ts: a
 * third of the CPU of Node's built-in fetch per request), which also goes through the proxy of HTTPS_PROXY /
 * HTTP_PROXY (unless NO_PROXY exempts the host) and trusts `github.caFile`'s certificates in addition to the
 * default roots (GitHub Enterprise Server behind a private CA).
 * The environment is handed in by the composition root; nothing is read from process.env here.
 */
import type { GitHubConfig } from '../core/fleet-config.js';
import { createNodeFetch } from '../lib/node-fetch.js';
import { proxyFor, proxySettingsFromEnv } from '../lib/proxy.js';
import type { FetchLike } from '../github/index.js';

export interface GitHubFetch {
  readonly fetch: FetchLike;
  /** How GitHub is reached, for the start-up log line: `direct` or `proxy http://proxy:3128` (no credentials). */
  readonly route: string;
  /** Frees kept-alive connections. */
  close(): void;
}

/** Throws ProxyError (code `proxy-invalid-url`) when a proxy variable is not a URL. */
export function githubFetch(
  github: Pick<GitHubConfig, 'apiUrl' | 'ca'>,
  env: Readonly<Record<string, string | undefined>>,
): GitHubFetch {
  const proxy = proxySettingsFromEnv(env);
  const via = proxyFor(new URL(github.apiUrl), proxy);
  const route = via ? `proxy ${via.protocol}//${via.host}` : 'direct';
  const fetch = createNodeFetch({ proxy, ...(github.ca !== undefined ? { ca: github.ca } : {}) });
  return { fetch, route, close: () => fetch.close() };
}
