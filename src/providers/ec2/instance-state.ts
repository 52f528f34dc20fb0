/**
 * An EC2 instance as runner-fleet sees it: its ownership tags, its state and why it ended, mapped to the provider
 * interface's Instance. Pure; the lister builds records from DescribeInstances pages, create() from launch answers.
 */
import type { Instance as Ec2Instance } from '@aws-sdk/client-ec2';
import { TAG_FLEET, TAG_RUNNER, TAG_SCALE_SET } from '../../aws/tags.js';
import type { Instance, InstanceState } from '../provider.js';

/**
 * Optional tag an instance may put on itself before it shuts down: the runner's exit code (decimal). Without it an
 * instance that shut itself down counts as succeeded. Proposed for src/aws/tags.ts; the start script decides whether
 * to set it (its instance role then needs ec2:CreateTags on itself for this key).
 */
export const TAG_EXIT_CODE = 'runner-fleet:exit-code';

export type Ec2StateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';

export interface Ec2InstanceRecord {
  readonly id: string;
  /** The runner name (TAG_RUNNER). */
  readonly name: string;
  readonly fleet: string;
  readonly scaleSet: string;
  readonly state: Ec2StateName;
  /** ms epoch: LaunchTime, or when runner-fleet first learned of it. */
  readonly createdAt: number;
  readonly spot: boolean;
  /** StateReason.Code, e.g. Server.SpotInstanceTermination, Client.InstanceInitiatedShutdown. */
  readonly reasonCode?: string;
  readonly reasonMessage?: string;
  /** ms epoch of the stop/termination, parsed from StateTransitionReason when AWS gives one. */
  readonly endedAt?: number;
  readonly exitCode?: number;
}

const STATES = new Set<string>(['pending', 'running', 'shutting-down', 'terminated', 'stopping', 'stopped']);

/** `User initiated (2024-05-01 10:00:00 GMT)` -> ms epoch. */
export function transitionTime(reason: string | undefined): number | undefined {
  const match = /\((\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)/.exec(reason ?? '');
  if (match === null) return undefined;
  const at = Date.parse(`${match[1]}T${match[2]}Z`);
  return Number.isNaN(at) ? undefined : at;
}

/** A DescribeInstances/RunInstances instance -> record; undefined when it carries no runner-fleet ownership tags. */
export function recordFromEc2(instance: Ec2Instance, now: number): Ec2InstanceRecord | undefined {
  const tags = new Map((instance.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
  const name = tags.get(TAG_RUNNER);
  const fleet = tags.get(TAG_FLEET);
  const scaleSet = tags.get(TAG_SCALE_SET);
  const id = instance.InstanceId;
  if (!name || !fleet || scaleSet === undefined || !id) return undefined;
  const stateName = instance.State?.Name ?? 'pending';
  const state = (STATES.has(stateName) ? stateName : 'pending') as Ec2StateName;
  const rawExit = tags.get(TAG_EXIT_CODE);
  const exitCode = rawExit !== undefined && /^-?\d+$/.test(rawExit) ? Number(rawExit) : undefined;
  const endedAt =
    state === 'pending' || state === 'running' ? undefined : transitionTime(instance.StateTransitionReason);
  return {
    id,
    name,
    fleet,
    scaleSet,
    state,
    createdAt: instance.LaunchTime?.getTime() ?? now,
    spot: instance.InstanceLifecycle === 'spot',
    ...(instance.StateReason?.Code ? { reasonCode: instance.StateReason.Code } : {}),
    ...(instance.StateReason?.Message ? { reasonMessage: instance.StateReason.Message } : {}),
    ...(endedAt !== undefined ? { endedAt } : {}),
    ...(exitCode !== undefined ? { exitCode } : {}),
  };
}

export function isLive(record: Pick<Ec2InstanceRecord, 'state'>): boolean {
  return record.state === 'pending' || record.state === 'running';
}

export function isSpotInterruption(record: Pick<Ec2InstanceRecord, 'reasonCode'>): boolean {
  return (
    record.reasonCode === 'Server.SpotInstanceTermination' ||
    record.reasonCode === 'Server.SpotInstanceShutdown'
  );
}

/** Why an ended instance ended, for `failed`; undefined when it shut itself down cleanly. */
function endReason(record: Ec2InstanceRecord): { state: InstanceState; message?: string } {
  if (record.exitCode !== undefined) {
    return record.exitCode === 0
      ? { state: 'succeeded' }
      : { state: 'failed', message: `runner exited with code ${record.exitCode}` };
  }
  const code = record.reasonCode ?? '';
  if (code === 'Client.InstanceInitiatedShutdown') return { state: 'succeeded' };
  if (isSpotInterruption(record)) {
    return { state: 'failed', message: `spot instance interrupted by AWS (${code})` };
  }
  if (code.startsWith('Server.')) {
    return { state: 'failed', message: `instance ended by AWS (${code})` };
  }
  if (code === 'Client.UserInitiatedShutdown') {
    return {
      state: 'failed',
      message: `instance ${record.state} through the EC2 API, not by its runner (${code})`,
    };
  }
  if (code.startsWith('Client.')) return { state: 'failed', message: `instance failed (${code})` };
  return { state: 'failed', message: `instance ${record.state}` };
}

export function instanceFromRecord(record: Ec2InstanceRecord): Instance {
  const base = {
    name: record.name,
    fleet: record.fleet,
    scaleSet: record.scaleSet,
    createdAt: record.createdAt,
    providerId: record.id,
  };
  if (record.state === 'pending') return { ...base, state: 'pending' };
  if (record.state === 'running') return { ...base, state: 'running' };
  const ended = endReason(record);
  return { ...base, state: ended.state, ...(ended.message !== undefined ? { message: ended.message } : {}) };
}
