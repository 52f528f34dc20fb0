/**
 * Plumbing of the GitHub REST API: every route goes through authentication, the primary and secondary rate limits,
 * fault injection and call counting, and answers with GitHub's headers (`x-ratelimit-*`, request id, media type)
 * and error bodies. Routes are declared with GitHub's own path templates (`/orgs/{org}/actions/runners`), which
 * are also the keys of `apiCalls.byRoute` in /_sim/stats.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Identity } from './auth.js';
import type { SimContext } from './context.js';
import {
  DOCS,
  GitHubError,
  notAccessibleByIntegration,
  notFound,
  problemsParsingJson,
  requiresAuthentication,
} from './errors.js';
import type { Bucket } from './rate-limit.js';
import { secondaryLimit } from './rate-limit.js';

/** Who may call a route: an installation token or the PAT; the App JWT; anyone (incl. anonymous). */
export type Access = 'installation' | 'app' | 'any';

export interface RestRequest {
  readonly params: Record<string, string>;
  readonly query: Record<string, string | undefined>;
  readonly body: unknown;
  readonly identity: Identity;
  /** Path and query as received (with /api/v3 in GHES mode), for Link headers. */
  readonly url: string;
}

export interface RestResponse {
  readonly status: number;
  readonly body?: unknown;
  /** The body already serialized (hot paths build JSON text from cached pieces). */
  readonly json?: string;
  readonly headers?: Record<string, string>;
}

export interface RestRoute {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** GitHub's path template, without the GHES prefix. */
  readonly path: string;
  readonly access: Access;
  /** Counts against the secondary limit on runner-creating POSTs. */
  readonly creates?: boolean;
  /** GET /rate_limit does not count against the primary limit. */
  readonly free?: boolean;
  readonly handler: (request: RestRequest) => RestResponse | Promise<RestResponse>;
}

/** GitHub request ids look like `C0DE:1A2B:3C4D5E:6F7A8B:65F00000`; a counter keeps them unique and cheap. */
let requestCounter = 0;
const requestId = (): string => {
  requestCounter = (requestCounter + 1) % 0x7fffffff;
  return `5117:${process.pid.toString(16).toUpperCase()}:${requestCounter.toString(16).toUpperCase().padStart(8, '0')}`;
};

const toFastifyPath = (template: string): string => template.replace(/\{([a-z_]+)\}/g, ':$1');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function commonHeaders(ctx: SimContext): Record<string, string> {
  const headers: Record<string, string> = {
    'x-github-request-id': requestId(),
    'x-github-media-type': 'github.v3; format=json',
    'x-github-api-version-selected': '2022-11-28',
  };
  if (ctx.options.ghes) headers['x-github-enterprise-version'] = '3.19.0';
  return headers;
}

function firstValues(query: unknown): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  if (typeof query !== 'object' || query === null) return out;
  for (const [k, v] of Object.entries(query as Record<string, unknown>)) {
    out[k] = Array.isArray(v) ? String(v[0]) : v === undefined ? undefined : String(v);
  }
  return out;
}

/** GitHub parses request bodies as JSON whatever the content type; an empty body is an empty object. */
export function parseJsonBody(raw: unknown): unknown {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'string') return raw;
  if (raw.trim() === '') return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw problemsParsingJson();
  }
}

function injectedError(status: number): GitHubError {
  if (status === 403) return secondaryLimit(1);
  if (status === 429) {
    const e = secondaryLimit(1);
    return new GitHubError(429, e.message, {
      documentationUrl: e.documentationUrl,
      headers: e.headers,
      code: 'injected',
    });
  }
  const message = status === 500 ? 'Server Error' : (STATUS_CODES[status] ?? 'Server Error');
  return new GitHubError(status, message, { code: 'injected' });
}

function checkAccess(access: Access, identity: Identity): void {
  if (access === 'any') return;
  if (identity.kind === 'anonymous') {
    throw access === 'app'
      ? new GitHubError(401, 'A JSON web token could not be decoded', { documentationUrl: DOCS.apps })
      : requiresAuthentication();
  }
  if (access === 'app' && identity.kind !== 'app') {
    throw new GitHubError(401, 'A JSON web token could not be decoded', { documentationUrl: DOCS.apps });
  }
  if (access === 'installation' && identity.kind === 'app') throw notAccessibleByIntegration();
}

export function countCall(ctx: SimContext, key: string): void {
  ctx.stats.total++;
  ctx.stats.byRoute.set(key, (ctx.stats.byRoute.get(key) ?? 0) + 1);
}

function send(
  ctx: SimContext,
  request: FastifyRequest,
  template: string | null,
  reply: FastifyReply,
  status: number,
  body: unknown,
  headers: Record<string, string>,
): FastifyReply {
  reply.code(status).headers(headers);
  const text =
    status === 204 || body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  ctx.recorded?.push({
    method: request.method,
    template,
    url: request.url,
    requestBody: typeof request.body === 'string' ? request.body : undefined,
    status,
    responseBody: text,
    responseHeaders: { ...headers },
  });
  if (text === undefined) return reply.send();
  return reply.type('application/json; charset=utf-8').send(text);
}

/** Identity for headers of a failed authentication: GitHub reports the anonymous budget then. */
function safeIdentity(ctx: SimContext, request: FastifyRequest): Identity {
  try {
    return ctx.auth.authenticate(request.headers.authorization, request.ip);
  } catch {
    return { kind: 'anonymous', ip: request.ip };
  }
}

export function registerRest(app: FastifyInstance, ctx: SimContext, routes: readonly RestRoute[]): void {
  for (const route of routes) {
    const key = `${route.method} ${route.path}`;
    app.route({
      method: route.method,
      url: `${ctx.prefix}${toFastifyPath(route.path)}`,
      handler: async (request, reply) => {
        countCall(ctx, key);
        const headers = commonHeaders(ctx);
        let bucket: Bucket | undefined;
        let release: (() => void) | undefined;
        try {
          if (ctx.faults.latencyMs > 0) await sleep(ctx.faults.latencyMs);
          let identity: Identity;
          try {
            identity = ctx.auth.authenticate(request.headers.authorization, request.ip);
          } catch (error) {
            bucket = ctx.limiter.bucket({ kind: 'anonymous', ip: request.ip });
            throw error;
          }
          bucket = ctx.limiter.bucket(identity);
          checkAccess(route.access, identity);
          release = ctx.limiter.enter(bucket);
          if (!route.free) ctx.limiter.consume(bucket);
          if (route.creates) ctx.limiter.consumeCreate(bucket);
          if (ctx.faults.apiErrorRate > 0 && ctx.options.random() < ctx.faults.apiErrorRate) {
            throw injectedError(ctx.faults.apiErrorStatus);
          }
          const hasBody = route.method !== 'GET' && route.method !== 'DELETE';
          const result = await route.handler({
            params: request.params as Record<string, string>,
            query: firstValues(request.query),
            body: hasBody ? parseJsonBody(request.body) : undefined,
            identity,
            url: request.url,
          });
          if (ctx.faults.apiLostResponseRate > 0 && ctx.options.random() < ctx.faults.apiLostResponseRate) {
            throw injectedError(ctx.faults.apiErrorStatus);
          }
          Object.assign(headers, ctx.limiter.headers(bucket), result.headers);
          return send(ctx, request, route.path, reply, result.status, result.json ?? result.body, headers);
        } catch (error) {
          const e = error instanceof GitHubError ? error : internalError(ctx, error);
          if (bucket) Object.assign(headers, ctx.limiter.headers(bucket));
          Object.assign(headers, e.headers);
          return send(ctx, request, route.path, reply, e.status, e.body(), headers);
        } finally {
          release?.();
        }
      },
    });
  }
}

function internalError(ctx: SimContext, error: unknown): GitHubError {
  ctx.options.logger?.error({ err: error }, 'simulator handler failed');
  return new GitHubError(500, 'Server Error', { code: 'internal' });
}

/** The answer to a path no route serves: GitHub's 404 with its usual headers. */
export function restNotFound(ctx: SimContext, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  countCall(ctx, `${request.method} (unknown route)`);
  const headers = commonHeaders(ctx);
  const bucket = ctx.limiter.bucket(safeIdentity(ctx, request));
  Object.assign(headers, ctx.limiter.headers(bucket));
  return send(ctx, request, null, reply, 404, notFound().body(), headers);
}

/** `per_page` (default 30, at most 100) and `page` (from 1), as GitHub reads them. */
export function pageParams(query: Record<string, string | undefined>): { perPage: number; page: number } {
  const perPageRaw = Number.parseInt(query.per_page ?? '', 10);
  const pageRaw = Number.parseInt(query.page ?? '', 10);
  const perPage = Number.isFinite(perPageRaw) && perPageRaw > 0 ? Math.min(perPageRaw, 100) : 30;
  const page = Number.isFinite(pageRaw) && pageRaw > 0 ? pageRaw : 1;
  return { perPage, page };
}

/** One page of `items` and GitHub's `Link` header (first, prev, next, last). */
export function paginate<T>(
  ctx: SimContext,
  request: RestRequest,
  items: readonly T[],
): { items: T[]; headers: Record<string, string> } {
  const { perPage, page } = pageParams(request.query);
  const start = (page - 1) * perPage;
  const slice = items.slice(start, start + perPage);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const url = new URL(request.url, ctx.urls.web);
  const link = (p: number, rel: string) => {
    url.searchParams.set('per_page', String(perPage));
    url.searchParams.set('page', String(p));
    return `<${url.toString()}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (page > 1) links.push(link(Math.min(page - 1, last), 'prev'));
  if (page < last) links.push(link(page + 1, 'next'));
  if (page < last) links.push(link(last, 'last'));
  if (page > 1) links.push(link(1, 'first'));
  return { items: slice, headers: links.length > 0 ? { link: links.join(', ') } : {} };
}
