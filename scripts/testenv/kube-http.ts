/**
 * The few raw HTTPS calls bootstrapping needs (health probes, creating the fake nodes) before any kubeconfig-based
 * client is worth building. Verifies the apiserver against the test CA.
 */
import { request } from 'node:https';

export interface Endpoint {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** PEM of the CA that signed the serving certificate; omit for components with self-signed certificates. */
  readonly ca?: string;
  readonly token?: string;
}

export interface HttpResult {
  readonly status: number;
  readonly body: string;
}

export function httpsRequest(
  endpoint: Endpoint,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<HttpResult> {
  const url = new URL(path, endpoint.server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        // Components other than the apiserver serve a certificate they generated themselves; only their /healthz is
        // read, and only on loopback.
        ...(endpoint.ca === undefined ? { rejectUnauthorized: false } : { ca: endpoint.ca }),
        headers: {
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...(endpoint.token === undefined ? {} : { authorization: `Bearer ${endpoint.token}` }),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`${method} ${url.pathname}: timed out after ${timeoutMs} ms`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}
