/**
 * Runs one process the way a container runtime runs a pod's container, without a container engine: a private mount
 * namespace (unshare) holding a fresh root (a tmpfs) into which the host's /usr (and the /bin, /lib symlinks) are
 * bound read-only, the container's volumes bound at their mount paths (read-only or not), the root itself then made
 * read-only when `readOnlyRootFilesystem`, and the process started with chroot as the given uid/gid, in its working
 * directory, with exactly the given environment. A write anywhere but a writable volume fails with EROFS (or EACCES
 * for a non-root user), as it would in the pod. Everything is undone by the kernel when the process exits: the mounts
 * live only in its namespace.
 *
 * Needs root and mount namespaces (`unshare --mount`). `containerRuntimeAvailable()` says whether this machine has
 * them; suites skip loudly without, and fail under CI=true.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface ContainerMount {
  readonly hostPath: string;
  readonly containerPath: string;
  readonly readOnly: boolean;
}

export interface ContainerSpec {
  /** argv; the first word is looked up on the container's PATH. */
  readonly command: readonly string[];
  /** The process's whole environment (PATH included). */
  readonly env: Readonly<Record<string, string>>;
  readonly workingDir?: string;
  /** runAsUser / runAsGroup (and fsGroup as a supplementary group). Default root. */
  readonly user?: { readonly uid: number; readonly gid: number; readonly groups?: readonly number[] };
  readonly mounts: readonly ContainerMount[];
  readonly readOnlyRootFilesystem: boolean;
}

const SCRIPT = String.raw`
set -euo pipefail
root=$1 mounts=$2 readonly_root=$3 userspec=$4 groups=$5 workdir=$6
shift 6
/usr/bin/mount -t tmpfs -o mode=755,size=8m rf-container-root "$root"
/usr/bin/mkdir "$root/usr"
/usr/bin/mount --rbind /usr "$root/usr"
/usr/bin/mount -o remount,bind,ro "$root/usr"
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then /usr/bin/ln -s "$(/usr/bin/readlink "/$d")" "$root/$d"
  elif [ -d "/$d" ]; then
    /usr/bin/mkdir "$root/$d"
    /usr/bin/mount --rbind "/$d" "$root/$d"
    /usr/bin/mount -o remount,bind,ro "$root/$d"
  fi
done
/usr/bin/mkdir -p "$root/proc" "$root/dev" "$root/sys" "$root/etc" "$root/tmp" "$root/run"
/usr/bin/mount --rbind /proc "$root/proc"
/usr/bin/mount --rbind /dev "$root/dev"
/usr/bin/mount --rbind /sys "$root/sys"
for f in hosts resolv.conf nsswitch.conf; do [ -f "/etc/$f" ] && /usr/bin/cp "/etc/$f" "$root/etc/$f"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' > "$root/etc/group"
while IFS=$'\t' read -r mode host target; do
  [ -n "$target" ] || continue
  if [ -d "$host" ]; then /usr/bin/mkdir -p "$root$target"
  else /usr/bin/mkdir -p "$(/usr/bin/dirname "$root$target")"; : > "$root$target"; fi
  /usr/bin/mount --bind "$host" "$root$target"
  if [ "$mode" = ro ]; then /usr/bin/mount -o remount,bind,ro "$root$target"; fi
done < "$mounts"
/usr/bin/mkdir -p "$root$workdir"
if [ "$readonly_root" = 1 ]; then /usr/bin/mount -o remount,ro "$root"; fi
exec /usr/sbin/chroot --userspec="$userspec" --groups="$groups" "$root" /usr/bin/env -u PWD -u OLDPWD -u SHLVL -u _ -C "$workdir" "$@"
`;

let available: boolean | undefined;

/** Whether this machine can run containers this way (root, mount namespaces, chroot). */
export function containerRuntimeAvailable(): boolean {
  available ??=
    process.getuid?.() === 0 &&
    spawnSync('/usr/bin/unshare', ['--mount', '--propagation', 'private', '/usr/bin/true'], {
      stdio: 'ignore',
    }).status === 0 &&
    spawnSync('/usr/sbin/chroot', ['--version'], { stdio: 'ignore' }).status === 0;
  return available;
}

/** For describe.skipIf(!requireContainerRuntime(...)): loud skip on a developer machine, failure under CI=true. */
export function requireContainerRuntime(suite: string): boolean {
  if (containerRuntimeAvailable()) return true;
  const message = `[${suite}] SKIPPED: running a container needs root and mount namespaces (unshare --mount)`;
  if (process.env.CI === 'true')
    throw new Error(`${message}\nUnder CI=true a missing test peer is a failure.`);
  console.warn(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n`);
  return false;
}

export interface RunningContainer {
  readonly process: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or the signal) once the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; removes the scratch directory. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startContainer(spec: ContainerSpec): RunningContainer {
  const scratch = mkdtempSync(path.join(tmpdir(), 'rf-container-'));
  const root = path.join(scratch, 'root');
  const mounts = path.join(scratch, 'mounts.tsv');
  const script = path.join(scratch, 'run.sh');
  mkdirSync(root);
  writeFileSync(
    mounts,
    spec.mounts.map((m) => `${m.readOnly ? 'ro' : 'rw'}\t${m.hostPath}\t${m.containerPath}\n`).join(''),
  );
  writeFileSync(script, SCRIPT);
  const user = spec.user ?? { uid: 0, gid: 0 };
  const groups = [user.gid, ...(user.groups ?? [])].join(',');
  const child = spawn(
    '/usr/bin/unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '/bin/bash',
      script,
      root,
      mounts,
      spec.readOnlyRootFilesystem ? '1' : '0',
      `${user.uid}:${user.gid}`,
      groups,
      spec.workingDir ?? '/',
      ...spec.command,
    ],
    { env: { ...spec.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-200_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      rmSync(scratch, { recursive: true, force: true });
      resolve({ code, signal });
    }),
  );
  return {
    process: child,
    output: () => out,
    exited,
    async stop(graceMs = 20_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const result = await exited;
        clearTimeout(timer);
        return result;
      }
      return exited;
    },
  };
}
