/**
 * The fetch GitHub requests go through: Node's own fetch when nothing special is needed, otherwise one over
 * node:https that goes through the proxy of HTTPS_PROXY / HTTP_PROXY (unless NO_PROXY exempts the host) and trusts
 * `github.caFile`'s certificates in addition to the default roots (GitHub Enterprise Server behind a private CA).
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
  if (via === undefined && github.ca === undefined) {
    return { fetch: (input, init) => globalThis.fetch(input, init), route, close() {} };
  }
  const fetch = createNodeFetch({ proxy, ...(github.ca !== undefined ? { ca: github.ca } : {}) });
  return { fetch, route, close: () => fetch.close() };
}
