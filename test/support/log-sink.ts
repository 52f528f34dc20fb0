/** Collects newline-separated output (pino JSON lines, runner lines, a child's stdout) in memory. */
import { Writable } from 'node:stream';

export class LogSink extends Writable {
  readonly lines: string[] = [];
  #partial = '';

  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (error?: Error | null) => void): void {
    const parts = (this.#partial + chunk.toString()).split('\n');
    this.#partial = parts.pop() ?? '';
    for (const p of parts) if (p !== '') this.lines.push(p);
    done();
  }

  text(): string {
    return this.lines.join('\n') + (this.#partial === '' ? '' : `\n${this.#partial}`);
  }
}
