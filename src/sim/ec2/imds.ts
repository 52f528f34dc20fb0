/**
 * TEST AID: the instance metadata service of ONE simulated EC2 instance, as IMDSv2 with HttpTokens=required answers
 * it, on 127.0.0.1 (a port of its own). The EC2 bridge (src/sim/ec2-bridge) starts one per instance and points the
 * start script (RUNNER_FLEET_IMDS_ENDPOINT) and the AWS CLI (AWS_EC2_METADATA_SERVICE_ENDPOINT) at it.
 *
 * - `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds: 1..21600` returns a session token; without
 *   a valid TTL header 400; with `X-Forwarded-For` 403 (IMDS refuses proxied token requests).
 * - Every `GET /latest/...` needs `X-aws-ec2-metadata-token` with a token that has not expired: 401 otherwise.
 * - `meta-data/instance-id`, `meta-data/placement/region`, `meta-data/placement/availability-zone`,
 *   `meta-data/iam/security-credentials/` (the role name) and `.../<role>` (credentials JSON in the shape the AWS
 *   SDKs and CLI read), `meta-data/spot/instance-action` (404 until an interruption is scheduled), `user-data`
 *   (404 when the instance has none). Anything else: 404.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const IMDS_MAX_TOKEN_TTL_SECONDS = 21_600;

export interface ImdsRole {
  /** The instance profile's role name, listed at meta-data/iam/security-credentials/. */
  readonly name: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Default: a fixed placeholder (moto accepts any). */
  readonly sessionToken?: string;
}

export interface ImdsOptions {
  readonly instanceId: string;
  readonly region: string;
  /** Default `<region>a`. */
  readonly availabilityZone?: string;
  /** The user data as text (served as is); undefined: 404, as for an instance launched without any. */
  readonly userData?: string;
  /** Credentials of the instance profile; undefined: the instance has none (404). */
  readonly role?: ImdsRole;
  readonly now?: () => number;
}

export type SpotAction = 'terminate' | 'stop' | 'hibernate';

export interface ImdsStats {
  /** Session tokens issued. */
  tokens: number;
  /** Requests answered 200. */
  served: number;
  /** Requests refused for a missing, bad or expired token (401). */
  unauthorized: number;
}

export interface ImdsServer {
  /** http://127.0.0.1:PORT, the endpoint without /latest (what RUNNER_FLEET_IMDS_ENDPOINT takes). */
  readonly url: string;
  readonly stats: Readonly<ImdsStats>;
  /** From now on meta-data/spot/instance-action shows the notice: `{"action", "time"}` with `time` = `at`. */
  scheduleInterruption(at: Date, action?: SpotAction): void;
  close(): Promise<void>;
}

/** IMDS times: ISO 8601 in UTC to the second, e.g. 2024-05-01T12:00:00Z. */
const imdsTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export async function startImds(options: ImdsOptions): Promise<ImdsServer> {
  const now = options.now ?? Date.now;
  const tokens = new Map<string, number>();
  const stats: ImdsStats = { tokens: 0, served: 0, unauthorized: 0 };
  let interruption: { action: SpotAction; time: string } | undefined;
  const zone = options.availabilityZone ?? `${options.region}a`;
  const sessionToken = options.role?.sessionToken ?? 'runner-fleet-imds-session-token';

  const send = (res: ServerResponse, status: number, body: string, type = 'text/plain') => {
    res.writeHead(status, {
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      server: 'EC2ws',
    });
    res.end(body);
  };

  function metadata(path: string): { body: string; type?: string } | undefined {
    switch (path) {
      case 'meta-data/instance-id':
        return { body: options.instanceId };
      case 'meta-data/placement/region':
        return { body: options.region };
      case 'meta-data/placement/availability-zone':
        return { body: zone };
      case 'meta-data/spot/instance-action':
        return interruption === undefined
          ? undefined
          : { body: JSON.stringify(interruption), type: 'application/json' };
      case 'user-data':
        return options.userData === undefined
          ? undefined
          : { body: options.userData, type: 'application/octet-stream' };
    }
    const role = options.role;
    if (role === undefined) return undefined;
    if (path === 'meta-data/iam/security-credentials/' || path === 'meta-data/iam/security-credentials') {
      return { body: role.name };
    }
    if (path === `meta-data/iam/security-credentials/${role.name}`) {
      const t = now();
      return {
        type: 'application/json',
        body: JSON.stringify({
          Code: 'Success',
          LastUpdated: imdsTime(t),
          Type: 'AWS-HMAC',
          AccessKeyId: role.accessKeyId,
          SecretAccessKey: role.secretAccessKey,
          Token: sessionToken,
          Expiration: imdsTime(t + 6 * 3600_000),
        }),
      };
    }
    return undefined;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return send(res, 405, 'Method Not Allowed');
      if (req.headers['x-forwarded-for'] !== undefined) return send(res, 403, 'Forbidden');
      const raw = req.headers['x-aws-ec2-metadata-token-ttl-seconds'];
      const ttl = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
      if (!(ttl >= 1 && ttl <= IMDS_MAX_TOKEN_TTL_SECONDS)) return send(res, 400, 'Bad Request');
      const token = randomBytes(42).toString('base64url');
      // Expired tokens are dropped when the next one is issued: the map stays as small as the live set.
      for (const [t, expires] of tokens) if (expires <= now()) tokens.delete(t);
      tokens.set(token, now() + ttl * 1000);
      stats.tokens++;
      res.setHeader('x-aws-ec2-metadata-token-ttl-seconds', String(ttl));
      return send(res, 200, token);
    }
    if (!path.startsWith('/latest/')) return send(res, 404, 'Not Found');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'Method Not Allowed');
    const token = req.headers['x-aws-ec2-metadata-token'];
    const expires = typeof token === 'string' ? tokens.get(token) : undefined;
    if (expires === undefined || expires <= now()) {
      stats.unauthorized++;
      return send(res, 401, 'Unauthorized');
    }
    const found = metadata(path.slice('/latest/'.length));
    if (found === undefined) return send(res, 404, 'Not Found');
    stats.served++;
    send(res, 200, found.body, found.type);
  }

  const server = createServer((req, res) => {
    // The body of a PUT is ignored, as IMDS does; reading it lets the connection be reused.
    req.resume();
    req.on('end', () => handle(req, res));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('imds: the server has no TCP address');

  return {
    url: `http://127.0.0.1:${address.port}`,
    stats,
    scheduleInterruption(at, action = 'terminate') {
      interruption = { action, time: imdsTime(at.getTime()) };
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
