/**
 * One AWS Query-protocol call (a form POST signed with Signature Version 4), for the few IAM calls the EC2 demo makes
 * to set up its instance profile in a local AWS endpoint (moto). runner-fleet has no IAM SDK client: the controller
 * never calls IAM, and this keeps the demo from adding one.
 */
import { createHash, createHmac } from 'node:crypto';

export interface AwsQueryCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface AwsQueryRequest {
  /** http(s) URL of the endpoint. */
  readonly endpoint: string;
  /** Signing region (IAM signs in us-east-1). */
  readonly region: string;
  /** Signing service name, e.g. `iam`. */
  readonly service: string;
  readonly credentials: AwsQueryCredentials;
  readonly action: string;
  /** API version, e.g. `2010-05-08` for IAM. */
  readonly version: string;
  readonly params?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  readonly fetch?: typeof fetch;
  /** Clock, for tests. */
  readonly now?: () => Date;
}

export class AwsQueryError extends Error {
  override readonly name = 'AwsQueryError';
  /** AWS error code (`EntityAlreadyExists`), or `aws-query-failed` when the answer carried none. */
  readonly code: string;
  readonly status: number;
  constructor(message: string, code: string, status: number, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = status;
  }
}

const sha256 = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer =>
  createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding, as SigV4 requires (encodeURIComponent leaves !'()* alone). */
function encode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The signed request: body and headers. Exported for tests. */
export function signQuery(request: AwsQueryRequest): {
  url: string;
  body: string;
  headers: Record<string, string>;
} {
  const url = new URL(request.endpoint);
  const params: Record<string, string> = {
    Action: request.action,
    Version: request.version,
    ...request.params,
  };
  const body = Object.keys(params)
    .sort()
    .map((k) => `${encode(k)}=${encode(params[k]!)}`)
    .join('&');
  const now = (request.now ?? (() => new Date()))();
  const amzDate = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const contentType = 'application/x-www-form-urlencoded; charset=utf-8';
  const headers: Record<string, string> = {
    'content-type': contentType,
    host: url.host,
    'x-amz-date': amzDate,
  };
  const signed = Object.keys(headers).sort();
  const canonical = [
    'POST',
    url.pathname === '' ? '/' : url.pathname,
    '',
    ...signed.map((h) => `${h}:${headers[h]}`),
    '',
    signed.join(';'),
    sha256(body),
  ].join('\n');
  const scope = `${day}/${request.region}/${request.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let key = hmac(`AWS4${request.credentials.secretAccessKey}`, day);
  for (const part of [request.region, request.service, 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
  return {
    url: url.toString(),
    body,
    headers: {
      'content-type': contentType,
      'x-amz-date': amzDate,
      authorization:
        `AWS4-HMAC-SHA256 Credential=${request.credentials.accessKeyId}/${scope}, ` +
        `SignedHeaders=${signed.join(';')}, Signature=${signature}`,
    },
  };
}

const tag = (xml: string, name: string): string | undefined =>
  new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];

/** Makes the call; resolves to the XML answer, rejects with AwsQueryError carrying AWS's error code. */
export async function awsQuery(request: AwsQueryRequest): Promise<string> {
  const signed = signQuery(request);
  const doFetch = request.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(signed.url, {
      method: 'POST',
      headers: signed.headers,
      body: signed.body,
      signal: request.signal ?? AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new AwsQueryError(
      `${request.service} ${request.action}: cannot reach ${request.endpoint} (${(error as Error).message})`,
      'aws-unreachable',
      0,
      { cause: error },
    );
  }
  const text = await response.text();
  if (response.ok) return text;
  const code = tag(text, 'Code') ?? 'aws-query-failed';
  const message = (tag(text, 'Message') ?? text.slice(0, 200)).trim();
  throw new AwsQueryError(
    `${request.service} ${request.action}: ${code} [HTTP ${response.status}]: ${message}`,
    code,
    response.status,
  );
}
