/**
 * The live heap of another Node process: what is left of its JavaScript heap after a full garbage collection.
 * Resident memory of a collected runtime is a sawtooth (V8 grows its young and old generations between full
 * collections and sizes them to the load over the first minutes), so a slope through resident memory over half an
 * hour mixes that sizing with any leak. The heap left after a full collection is what the process still holds: a
 * leak shows there as growth, heap sizing does not.
 *
 * SIGUSR1 opens Node's inspector in the target (on 127.0.0.1:9229, Node's default; nothing else may hold that port),
 * and the Chrome DevTools protocol asks it for a collection (HeapProfiler.collectGarbage) and its heap use after it
 * (Runtime.getHeapUsage). The process runs as shipped: no flag, no option, no code of the benchmark's in it.
 */
import net from 'node:net';
import WebSocket from 'ws';

const INSPECTOR_PORT = 9229;

export interface HeapAfterGc {
  /** Bytes of the JavaScript heap in use after the collection. */
  readonly usedBytes: number;
  /** Bytes the heap has reserved (its spaces' sizes) after the collection. */
  readonly totalBytes: number;
  /** The target's process.memoryUsage() right after: rss, heapTotal, heapUsed, external, arrayBuffers (bytes). */
  readonly process: NodeJS.MemoryUsage;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export class LiveHeap {
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, { resolve: (result: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: unknown };
      if (message.id === undefined) return;
      const waiter = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error) waiter?.reject(new Error(`live heap: ${JSON.stringify(message.error)}`));
      else waiter?.resolve(message.result);
    });
  }

  /** Opens the inspector of process `pid` and connects to it. */
  static async attach(pid: number, timeoutMs = 15_000): Promise<LiveHeap> {
    if (!(await portFree(INSPECTOR_PORT))) {
      throw new Error(
        `live heap: port ${INSPECTOR_PORT} on 127.0.0.1 is taken; the inspector of pid ${pid} needs it`,
      );
    }
    process.kill(pid, 'SIGUSR1');
    const deadline = Date.now() + timeoutMs;
    let url: string | undefined;
    while (url === undefined) {
      try {
        const res = await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json/list`);
        const targets = (await res.json()) as { webSocketDebuggerUrl?: string }[];
        url = targets[0]?.webSocketDebuggerUrl;
      } catch {
        // not listening yet
      }
      if (url === undefined) {
        if (Date.now() > deadline)
          throw new Error(`live heap: the inspector of pid ${pid} did not open in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new LiveHeap(ws);
  }

  #call<T>(method: string, params?: object): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (result: unknown) => void, reject });
      this.#ws.send(JSON.stringify({ id, method, ...(params ? { params } : {}) }));
    });
  }

  /** A full collection in the target, then its heap use. */
  async measure(): Promise<HeapAfterGc> {
    await this.#call('HeapProfiler.collectGarbage');
    const usage = await this.#call<{ usedSize: number; totalSize: number }>('Runtime.getHeapUsage');
    const memory = await this.#call<{ result: { value: NodeJS.MemoryUsage } }>('Runtime.evaluate', {
      expression: 'process.memoryUsage()',
      returnByValue: true,
    });
    return { usedBytes: usage.usedSize, totalBytes: usage.totalSize, process: memory.result.value };
  }

  close(): void {
    this.#ws.close();
  }
}
