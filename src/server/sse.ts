/**
 * Server-Sent Events over a fastify reply: headers, a heartbeat comment so proxies keep the stream open, and
 * clean-up when the client goes away. Used by `GET /api/v1/stream`; a dashboard may use it for its own streams.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface SseStream {
  send(event: string, data: unknown, id?: string): void;
  close(): void;
  readonly closed: boolean;
}

export function openSse(
  request: FastifyRequest,
  reply: FastifyReply,
  options: { heartbeatMs?: number; onClose?: () => void } = {},
): SseStream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store, no-transform',
    'x-content-type-options': 'nosniff',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(': connected\n\n');
  let closed = false;
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), options.heartbeatMs ?? 15_000);
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    options.onClose?.();
    res.end();
  };
  request.raw.once('close', close);
  return {
    send(event, data, id) {
      if (closed) return;
      const lines = [`event: ${event.replace(/[\r\n]/g, '')}`];
      if (id !== undefined) lines.push(`id: ${id.replace(/[\r\n]/g, '')}`);
      for (const line of JSON.stringify(data).split('\n')) lines.push(`data: ${line}`);
      res.write(`${lines.join('\n')}\n\n`);
    },
    close,
    get closed() {
      return closed;
    },
  };
}
