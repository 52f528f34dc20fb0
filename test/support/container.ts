/**
 * Runs one process the way a container runtime runs a pod's container, without a container engine: a private mount
 * namespace (unshare) holding a fresh root (a tmpfs) into which the host's /usr (and the /bin, /lib symlinks) are
 * bound read-only, the container's volumes bound at their mount paths (read-only or not), the root itself then made
 * read-only when `readOnlyRootFilesystem`, and the process started with chroot as the given uid/gid, in its working
 * directory, with exactly the given environment. A write anywhere but a writable volume fails with EROFS (or EACCES
 * for a non-root user), as it would in the pod. Everything is undone by the kernel when the process exits: the mounts
 * live only in its namespace.
 *
 * With `network`, the process also gets a network namespace of its own, as a pod does: it may listen on 0.0.0.0
 * without being reachable from this machine. Its `inbound` ports are forwarded from free ports on this machine's
 * 127.0.0.1 (what `kubectl port-forward` or a Service does), and connections it makes to 127.0.0.1:<port> for each
 * `outbound` entry reach the given address on this machine (the API server, the simulator). The two sides are
 * joined through Unix sockets in a scratch directory: a small relay inside the namespace, and listeners here.
 *
 * Needs root and mount (and network) namespaces. `containerRuntimeAvailable()` says whether this machine has them;
 * suites skip loudly without, and fail under CI=true.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { reportSkip } from './skips.js';

export interface ContainerMount {
  readonly hostPath: string;
  readonly containerPath: string;
  readonly readOnly: boolean;
}

export interface PodNetwork {
  /** Ports the process listens on, each forwarded from a free port on this machine's 127.0.0.1. */
  readonly inbound?: readonly number[];
  /** In the pod, 127.0.0.1:`port` reaches `host`:`hostPort` on this machine. */
  readonly outbound?: readonly { readonly port: number; readonly host: string; readonly hostPort: number }[];
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
  /** A network namespace of its own; without it the process shares this machine's network. */
  readonly network?: PodNetwork;
}

const SCRIPT = String.raw`
set -euo pipefail
root=$1 mounts=$2 readonly_root=$3 userspec=$4 groups=$5 workdir=$6 relay=$7
shift 7
if [ -n "$relay" ]; then
  /usr/sbin/ip link set lo up
  scratch=$(/usr/bin/dirname "$mounts")
  "$relay" "$scratch/relay.mjs" "$scratch" &
  for _ in $(/usr/bin/seq 1 400); do [ -f "$scratch/relay.ready" ] && break; /usr/bin/sleep 0.05; done
  [ -f "$scratch/relay.ready" ] || { echo "container: the network relay did not start" >&2; exit 125; }
fi
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

/** Runs inside the pod's network namespace (not chrooted): joins its ports to Unix sockets in the scratch dir. */
const RELAY = String.raw`
import fs from 'node:fs';
import net from 'node:net';
const dir = process.argv[2];
const { inbound, outbound } = JSON.parse(fs.readFileSync(dir + '/network.json', 'utf8'));
const join = (a, b) => {
  a.pipe(b); b.pipe(a);
  for (const [x, y] of [[a, b], [b, a]]) { x.on('error', () => y.destroy()); x.on('close', () => y.destroy()); }
};
let pending = inbound.length + outbound.length;
const ready = () => { if (--pending <= 0) fs.writeFileSync(dir + '/relay.ready', ''); };
for (const port of outbound) {
  net.createServer((c) => join(c, net.connect(dir + '/out-' + port + '.sock'))).listen(port, '127.0.0.1', ready);
}
for (const port of inbound) {
  net.createServer((c) => join(c, net.connect(port, '127.0.0.1'))).listen(dir + '/in-' + port + '.sock', ready);
}
if (pending === 0) fs.writeFileSync(dir + '/relay.ready', '');
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 300).unref?.();
setInterval(() => {}, 1 << 30);
`;

let available: boolean | undefined;

/** Whether this machine can run containers this way (root, mount and network namespaces, chroot, ip). */
export function containerRuntimeAvailable(): boolean {
  available ??=
    process.getuid?.() === 0 &&
    spawnSync('/usr/bin/unshare', ['--mount', '--net', '--propagation', 'private', '/usr/bin/true'], {
      stdio: 'ignore',
    }).status === 0 &&
    spawnSync('/usr/sbin/chroot', ['--version'], { stdio: 'ignore' }).status === 0 &&
    spawnSync('/usr/sbin/ip', ['-V'], { stdio: 'ignore' }).status === 0;
  return available;
}

/** For describe.skipIf(!requireContainerRuntime(...)): loud skip on a developer machine, failure under CI=true. */
export function requireContainerRuntime(suite: string): boolean {
  if (containerRuntimeAvailable()) return true;
  return reportSkip(
    suite,
    'running a container needs root and mount and network namespaces (unshare), chroot and ip',
    'the suite as root (sudo npm test), or in a container started with --privileged',
  );
}

export interface RunningContainer {
  readonly process: ChildProcess;
  /** For each inbound port of the pod network, the port on this machine's 127.0.0.1 that reaches it. */
  readonly ports: ReadonlyMap<number, number>;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or the signal) once the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; removes the scratch directory. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function join(a: net.Socket, b: net.Socket): void {
  a.pipe(b);
  b.pipe(a);
  for (const [x, y] of [
    [a, b],
    [b, a],
  ] as const) {
    x.on('error', () => y.destroy());
    x.on('close', () => y.destroy());
  }
}

function listen(server: net.Server, target: string | number, host?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (typeof target === 'string') server.listen(target, () => resolve());
    else server.listen(target, host, () => resolve());
  });
}

export async function startContainer(spec: ContainerSpec): Promise<RunningContainer> {
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

  // This machine's side of the pod network: Unix sockets for the relay's outbound ports, TCP ports for inbound.
  const servers: net.Server[] = [];
  const ports = new Map<number, number>();
  const network = spec.network;
  if (network) {
    writeFileSync(path.join(scratch, 'relay.mjs'), RELAY);
    writeFileSync(
      path.join(scratch, 'network.json'),
      JSON.stringify({
        inbound: network.inbound ?? [],
        outbound: (network.outbound ?? []).map((o) => o.port),
      }),
    );
    for (const out of network.outbound ?? []) {
      const server = net.createServer((c) => join(c, net.connect(out.hostPort, out.host)));
      await listen(server, path.join(scratch, `out-${out.port}.sock`));
      servers.push(server);
    }
    for (const port of network.inbound ?? []) {
      const server = net.createServer((c) => join(c, net.connect(path.join(scratch, `in-${port}.sock`))));
      await listen(server, 0, '127.0.0.1');
      ports.set(port, (server.address() as AddressInfo).port);
      servers.push(server);
    }
  }

  const user = spec.user ?? { uid: 0, gid: 0 };
  const groups = [user.gid, ...(user.groups ?? [])].join(',');
  const child = spawn(
    '/usr/bin/unshare',
    [
      '--mount',
      ...(network ? ['--net'] : []),
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
      network ? process.execPath : '',
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
      for (const server of servers) server.close();
      rmSync(scratch, { recursive: true, force: true });
      resolve({ code, signal });
    }),
  );
  if (network) {
    // Connections are forwarded only once the relay inside the pod's network namespace listens.
    const deadline = Date.now() + 30_000;
    while (!existsSync(path.join(scratch, 'relay.ready'))) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`the container's network did not come up:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    process: child,
    ports,
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
