/**
 * Starting test/server/child-server.ts in its own process, talking to it over raw sockets, and reading its memory.
 * Shared by test/server/hostile.test.ts and scripts/reliability.ts.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');

export interface ChildServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Everything the child wrote on stderr (a crash's stack lands here). */
  stderr(): string;
  /** Resident set size in bytes, from /proc. */
  rss(): number;
  /** Exit code once it exited, null while it runs. */
  exitCode(): number | null;
  stop(): Promise<void>;
}

export async function startChildServer(level: string, logFile: string): Promise<ChildServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(HERE, 'child-server.ts'), level, logFile], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const started = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child server did not start: ${stderr}`)), 60_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n') && line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { url: string; pid: number });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child server exited with ${code}: ${stderr}`));
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: started.url,
    port: Number(new URL(started.url).port),
    pid: started.pid,
    process: child,
    stderr: () => stderr,
    rss: () => {
      const status = readFileSync(`/proc/${started.pid}/status`, 'utf8');
      const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
      return Number(kb) * 1024;
    },
    exitCode: () => child.exitCode ?? (child.signalCode ? 128 : null),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface RawResult {
  /** The status of the first response line, or null when the server sent none. */
  readonly status: number | null;
  readonly response: string;
  /** Milliseconds from connect until the server closed the connection (or the deadline). */
  readonly ms: number;
  /** True when the server closed the connection before the deadline. */
  readonly closedByServer: boolean;
}

/** Sends `bytes` on a fresh connection and waits until the server closes it or `deadlineMs` passes. */
export function rawExchange(port: number, bytes: string | Buffer, deadlineMs = 20_000): Promise<RawResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let response = '';
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1];
      resolve({ status: status ? Number(status) : null, response, ms: Date.now() - started, closedByServer });
    };
    const timer = setTimeout(() => finish(false), deadlineMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (response += chunk));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('end', () => finish(true));
    socket.write(bytes);
  });
}

/**
 * A client that sends the headers and `bodyBytes` of a declared `declared`-byte body, then one byte every
 * `trickleMs` until the server closes the connection. Resolves with the time the server took to cut it off.
 */
export function slowClient(
  port: number,
  options: { declared: number; bodyBytes: number; trickleMs: number; deadlineMs: number },
): { readonly socket: Socket; readonly result: Promise<RawResult> } {
  const socket = connect(port, '127.0.0.1');
  const started = Date.now();
  let response = '';
  let interval: NodeJS.Timeout | undefined;
  const result = new Promise<RawResult>((resolve) => {
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearInterval(interval);
      clearTimeout(timer);
      socket.destroy();
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1];
      resolve({ status: status ? Number(status) : null, response, ms: Date.now() - started, closedByServer });
    };
    const timer = setTimeout(() => finish(false), options.deadlineMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (response += chunk));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      socket.write(
        'POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
          'X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: 00000000-0000-0000-0000-000000000000\r\n' +
          `X-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\nContent-Length: ${options.declared}\r\n\r\n`,
      );
      if (options.bodyBytes > 0) socket.write(Buffer.alloc(options.bodyBytes, 0x20));
      interval = setInterval(() => {
        if (!socket.destroyed) socket.write(' ');
      }, options.trickleMs);
    });
  });
  return { socket, result };
}
