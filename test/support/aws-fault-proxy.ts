/**
 * A plain-HTTP proxy on 127.0.0.1 in front of moto: it forwards every request unchanged, counts them by AWS action,
 * and answers a chosen action with a fault in the real AWS wire format instead, when told to:
 *
 * - EC2 (query protocol: a form body with `Action=RunInstances`): HTTP 4xx/5xx with
 *   `<Response><Errors><Error><Code>..</Code><Message>..</Message></Error></Errors><RequestID>..</RequestID></Response>`.
 * - SSM (JSON protocol: header `X-Amz-Target: AmazonSSM.PutParameter`): `{"__type": "..", "message": ".."}`.
 * - CreateFleet only: a 200 whose `errorSet` carries an error code and whose `fleetInstanceSet` is empty, as EC2
 *   answers an `instant` fleet it could not fill.
 * - a delay before the request goes on (or before the fault is answered).
 * - a rewrite of moto's answer (to show a state moto cannot produce, such as a spot interruption).
 *
 * Each fault applies a given number of times (default once), optionally only to requests a predicate accepts.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AwsRequestInfo {
  /** `ec2` for query-protocol requests, `ssm` for JSON requests with an AmazonSSM target, else `other`. */
  readonly service: 'ec2' | 'ssm' | 'other';
  /** `RunInstances`, `PutParameter`, ... (`unknown` when none could be read). */
  readonly action: string;
  /** EC2: the form fields (`InstanceMarketOptions.MarketType`, ...). */
  readonly form: URLSearchParams;
  /** SSM: the parsed JSON body. */
  readonly json: Record<string, unknown>;
}

export interface AwsFault {
  readonly action: string;
  /** How many matching requests it applies to. Default 1; Infinity: until cleared. */
  readonly times?: number;
  /** Only requests this accepts. */
  readonly when?: (request: AwsRequestInfo) => boolean;
  /** ms to wait before forwarding (or before answering the fault). */
  readonly delayMs?: number;
  /** Answer this AWS error instead of forwarding. Status default 400. */
  readonly error?: { readonly code: string; readonly message?: string; readonly status?: number };
  /** Forward, then hand moto's answer body through this before it goes back. */
  readonly rewrite?: (body: string) => string;
  /** CreateFleet: answer 200 with this error in `errorSet` and no instance. */
  readonly fleetError?: {
    readonly code: string;
    readonly message?: string;
    readonly lifecycle?: 'spot' | 'on-demand';
  };
}

export interface AwsFaultProxy {
  /** http://127.0.0.1:PORT: give it to the SDK as the endpoint. */
  readonly url: string;
  inject(fault: AwsFault): void;
  /** Drops every fault not used up yet. */
  clearFaults(): void;
  /** Requests seen (forwarded or answered) by action since the last resetCounts(). */
  readonly counts: Readonly<Record<string, number>>;
  count(action: string): number;
  /** Faults answered, by action. */
  readonly injected: Readonly<Record<string, number>>;
  resetCounts(): void;
  close(): Promise<void>;
}

interface ArmedFault {
  readonly fault: AwsFault;
  remaining: number;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function describeRequest(req: IncomingMessage, body: Buffer): AwsRequestInfo {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string' && target.startsWith('AmazonSSM.')) {
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      // not JSON: leave it empty
    }
    return { service: 'ssm', action: target.slice('AmazonSSM.'.length), form: new URLSearchParams(), json };
  }
  const contentType = req.headers['content-type'] ?? '';
  if (contentType.includes('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(body.toString('utf8'));
    return { service: 'ec2', action: form.get('Action') ?? 'unknown', form, json: {} };
  }
  return { service: 'other', action: 'unknown', form: new URLSearchParams(), json: {} };
}

function answerError(res: ServerResponse, info: AwsRequestInfo, error: NonNullable<AwsFault['error']>): void {
  const requestId = randomUUID();
  const status = error.status ?? 400;
  const message = error.message ?? `${error.code} (injected by the test fault proxy)`;
  if (info.service === 'ssm') {
    const body = JSON.stringify({ __type: error.code, message });
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-requestid': requestId,
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
    return;
  }
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Response><Errors><Error><Code>${escapeXml(error.code)}</Code><Message>${escapeXml(message)}</Message>` +
    `</Error></Errors><RequestID>${requestId}</RequestID></Response>`;
  res.writeHead(status, {
    'content-type': 'text/xml;charset=UTF-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function answerFleetError(
  res: ServerResponse,
  info: AwsRequestInfo,
  fleetError: NonNullable<AwsFault['fleetError']>,
): void {
  const form = info.form;
  const templateId = form.get('LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId');
  const templateName = form.get('LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName');
  const version = form.get('LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version') ?? '$Default';
  const instanceType = form.get('LaunchTemplateConfigs.1.Overrides.1.InstanceType');
  const subnetId = form.get('LaunchTemplateConfigs.1.Overrides.1.SubnetId');
  const lifecycle =
    fleetError.lifecycle ??
    (form.get('TargetCapacitySpecification.DefaultTargetCapacityType') === 'on-demand'
      ? 'on-demand'
      : 'spot');
  const message = fleetError.message ?? 'There is no Spot capacity available that matches your request.';
  const spec =
    (templateId ? `<launchTemplateId>${escapeXml(templateId)}</launchTemplateId>` : '') +
    (templateName ? `<launchTemplateName>${escapeXml(templateName)}</launchTemplateName>` : '') +
    `<version>${escapeXml(version)}</version>`;
  const overrides =
    (instanceType ? `<instanceType>${escapeXml(instanceType)}</instanceType>` : '') +
    (subnetId ? `<subnetId>${escapeXml(subnetId)}</subnetId>` : '');
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<CreateFleetResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">' +
    `<requestId>${randomUUID()}</requestId>` +
    `<fleetId>fleet-${randomUUID()}</fleetId>` +
    '<errorSet><item>' +
    `<launchTemplateAndOverrides><launchTemplateSpecification>${spec}</launchTemplateSpecification>` +
    `<overrides>${overrides}</overrides></launchTemplateAndOverrides>` +
    `<lifecycle>${lifecycle}</lifecycle>` +
    `<errorCode>${escapeXml(fleetError.code)}</errorCode>` +
    `<errorMessage>${escapeXml(message)}</errorMessage>` +
    '</item></errorSet>' +
    '<fleetInstanceSet/>' +
    '</CreateFleetResponse>';
  res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function startAwsFaultProxy(target: string): Promise<AwsFaultProxy> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const faults: ArmedFault[] = [];
  let counts: Record<string, number> = {};
  let injected: Record<string, number> = {};

  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    rewrite?: (body: string) => string,
  ): void => {
    const request = http.request(
      {
        agent,
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host, 'content-length': body.length },
      },
      (answer) => {
        if (rewrite === undefined) {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          return;
        }
        const parts: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => parts.push(chunk));
        answer.on('end', () => {
          const text = rewrite(Buffer.concat(parts).toString('utf8'));
          const headers = { ...answer.headers, 'content-length': String(Buffer.byteLength(text)) };
          delete headers['transfer-encoding'];
          res.writeHead(answer.statusCode ?? 502, headers);
          res.end(text);
        });
      },
    );
    request.on('error', () => res.destroy());
    res.on('close', () => request.destroy());
    request.end(body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const info = describeRequest(req, body);
      counts[info.action] = (counts[info.action] ?? 0) + 1;
      const armed = faults.find(
        (f) => f.remaining > 0 && f.fault.action === info.action && (f.fault.when?.(info) ?? true),
      );
      if (armed !== undefined) armed.remaining--;
      const act = () => {
        if (armed?.fault.error !== undefined) {
          injected[info.action] = (injected[info.action] ?? 0) + 1;
          answerError(res, info, armed.fault.error);
        } else if (armed?.fault.fleetError !== undefined && info.action === 'CreateFleet') {
          injected[info.action] = (injected[info.action] ?? 0) + 1;
          answerFleetError(res, info, armed.fault.fleetError);
        } else {
          forward(req, res, body, armed?.fault.rewrite);
        }
      };
      const delay = armed?.fault.delayMs ?? 0;
      if (delay > 0) setTimeout(act, delay);
      else act();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    inject(fault) {
      faults.push({ fault, remaining: fault.times ?? 1 });
    },
    clearFaults() {
      faults.length = 0;
    },
    get counts() {
      return counts;
    },
    count(action) {
      return counts[action] ?? 0;
    },
    get injected() {
      return injected;
    },
    resetCounts() {
      counts = {};
      injected = {};
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
