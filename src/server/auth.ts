/** Bearer-token protection of /api/v1 and the dashboard, and the rule that a non-loopback server must have it. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';

export class ServerConfigError extends Error {
  override readonly name = 'ServerConfigError';
  readonly code = 'dashboard_token_required';
}

export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return h.slice(7).startsWith('127.');
  return false;
}

/**
 * Throws when /api/v1 and the dashboard would be reachable beyond this machine with no token guarding them: they are
 * served on `host` (the main listener), or on `dashboardHost` when they have a listener of their own; then the main
 * listener serves only the webhook (HMAC-verified), health and metrics, and may listen anywhere.
 */
export function assertServerExposure(
  host: string,
  dashboardToken: string | undefined,
  dashboardHost?: string,
): void {
  const where = dashboardHost ?? host;
  if (isLoopbackHost(where) || (dashboardToken !== undefined && dashboardToken.length > 0)) return;
  const field = dashboardHost === undefined ? 'server.host' : 'server.dashboard.host';
  throw new ServerConfigError(
    `${field} is ${where}, which is reachable beyond this machine, and /api/v1 and the dashboard would be served ` +
      `there without a token: set server.dashboardToken ` +
      `(e.g. dashboardToken: "\${env:RUNNER_FLEET_DASHBOARD_TOKEN}") so they require it, or serve them on a ` +
      `loopback listener of their own (server.dashboard: { host: 127.0.0.1, port: 8081 })` +
      (dashboardHost === undefined ? ', or listen on 127.0.0.1' : ''),
  );
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** onRequest hook: 401 unless `Authorization: Bearer <token>` matches (constant time). No token: open. */
export function bearerAuth(token: string | undefined) {
  const expected = token ? digest(token) : null;
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!expected) return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header) : null;
    if (match?.[1] && timingSafeEqual(digest(match[1]), expected)) return;
    await reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="runner-fleet"')
      .send({ error: 'unauthorized', message: 'a valid bearer token is required' });
  };
}
