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

/** Throws when the server would listen beyond loopback with no token guarding the API and the dashboard. */
export function assertServerExposure(host: string, dashboardToken: string | undefined): void {
  if (isLoopbackHost(host) || (dashboardToken !== undefined && dashboardToken.length > 0)) return;
  throw new ServerConfigError(
    `server.host is ${host}, which is reachable beyond this machine: set server.dashboardToken ` +
      `(e.g. dashboardToken: "\${env:RUNNER_FLEET_DASHBOARD_TOKEN}") so /api/v1 and the dashboard require it, ` +
      `or listen on 127.0.0.1`,
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
