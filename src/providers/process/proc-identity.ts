/**
 * Linux process identity. A pid alone is not an identity: after a process exits its pid can be handed to an
 * unrelated process. A (boot id, pid, start time) triple is, because the start time (in clock ticks since boot,
 * /proc/<pid>/stat field 22) of a reused pid differs, and a reboot changes the boot id.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ProcessIdentity {
  readonly pid: number;
  /** /proc/<pid>/stat field 22, as text (it can exceed 2^53 in theory). */
  readonly startTicks: string;
  readonly bootId: string;
}

interface ProcStat {
  readonly state: string;
  readonly pgrp: string;
  readonly startTicks: string;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ')': fields after the last ')'
  // start at field 3.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  const pgrp = rest[2];
  const startTicks = rest[19];
  if (state === undefined || pgrp === undefined || startTicks === undefined) return null;
  return { state, pgrp, startTicks };
}

export function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/**
 * The identity of a live process, or null when it does not exist or is a zombie. `allowZombie` serves a caller that
 * has just spawned the process and must identify it even if it already exited.
 */
export function identify(
  pid: number,
  bootId: string = readBootId(),
  allowZombie = false,
): ProcessIdentity | null {
  const stat = readStat(pid);
  if (stat === null || (!allowZombie && (stat.state === 'Z' || stat.state === 'X'))) return null;
  return { pid, startTicks: stat.startTicks, bootId };
}

/**
 * True when the process group led by the recorded process still has a live (non-zombie) member. A group id is a
 * pid, and Linux never hands out a pid that is still in use as a group id, so: if the leader's pid now shows a
 * different start time it was reused and our group is gone; if the leader is gone, any member left in that group is
 * ours (a runner orphaned by a killed wrapper). Signalling the group is safe exactly when this returns true.
 */
export function groupAlive(identity: ProcessIdentity, bootId: string = readBootId()): boolean {
  if (identity.bootId !== bootId) return false;
  const leader = readStat(identity.pid);
  if (leader !== null && leader.startTicks !== identity.startTicks) return false;
  if (leader !== null && leader.state !== 'Z' && leader.state !== 'X') return true;
  try {
    process.kill(-identity.pid, 0);
  } catch {
    // ESRCH: no member left. EPERM: the group belongs to another user, so it cannot be ours.
    return false;
  }
  // Zombies count as members for kill(2). Where nothing reaps orphans (a container whose pid 1 is not an init),
  // they linger, so look for a member that still runs.
  return hasLiveMember(identity.pid);
}

function hasLiveMember(pgid: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat !== null && stat.pgrp === String(pgid) && stat.state !== 'Z' && stat.state !== 'X') return true;
  }
  return false;
}

/** The working directory of a live process, or null. */
export function processCwd(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return null;
  }
}
