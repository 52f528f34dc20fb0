/**
 * Bounded reads of the files a configuration names: fleet.yaml itself and `${file:PATH}` secrets. Only regular
 * files are read (not /dev/zero, a FIFO or a directory), and never more than a limit, so a mistyped path cannot
 * hang `validate` or fill the controller's memory.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Largest `${file:...}` secret: a PEM key is about 2 KB. */
export const MAX_SECRET_FILE_BYTES = 1024 * 1024;
/** Largest fleet.yaml. */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;

/** Failure codes besides the system's (ENOENT, EACCES, EISDIR...). */
export type BoundedReadCode = 'ENOTREG' | 'EFBIG';

export class BoundedReadError extends Error {
  override readonly name = 'BoundedReadError';
  readonly code: BoundedReadCode | 'EISDIR';
  readonly limit: number;
  constructor(code: BoundedReadCode | 'EISDIR', limit: number) {
    super(code === 'EFBIG' ? `larger than ${formatBytes(limit)}` : code);
    this.code = code;
    this.limit = limit;
  }
}

export function formatBytes(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

/**
 * Reads a regular file as UTF-8, at most `limit` bytes. Throws a system error (with its `code`) when it cannot be
 * opened, and a BoundedReadError (`ENOTREG`, `EISDIR`, `EFBIG`) when it is not a regular file or is too large.
 * Opened non-blocking, so a FIFO without a writer cannot hang the read.
 */
export function readBoundedUtf8(path: string, limit: number): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new BoundedReadError('EISDIR', limit);
    if (!stat.isFile()) throw new BoundedReadError('ENOTREG', limit);
    if (stat.size > limit) throw new BoundedReadError('EFBIG', limit);
    // The file may grow between fstat and read: read one byte past the limit to notice.
    const buffer = Buffer.alloc(Math.min(stat.size, limit) + 1);
    let length = 0;
    for (;;) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
      if (length > limit) throw new BoundedReadError('EFBIG', limit);
      if (length === buffer.length) break;
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
