/**
 * An EC2 instance as runner-fleet sees it: its ownership tags, its state and why it ended, mapped to the provider
 * interface's Instance. Pure; the lister builds records from DescribeInstances pages, create() from launch answers.
 */
import type { Instance as Ec2Instance } from '@aws-sdk/client-ec2';
import { EXIT_CODE_VALUES, TAG_EXIT_CODE, TAG_FLEET, TAG_RUNNER, TAG_SCALE_SET } from '../../aws/tags.js';
import type { Instance, InstanceState } from '../provider.js';

/**
 * What the start script reported on its instance (the TAG_EXIT_CODE tag): the runner's exit code, or why no runner
 * ran to its end. Read only once the instance has ended: while it is pending or running the tag means nothing (the
 * instance role may tag any instance of its fleet with this key, see docs/aws.md).
 */
export type ExitReport = number | (typeof EXIT_CODE_VALUES)[keyof typeof EXIT_CODE_VALUES];

const EXIT_WORDS: ReadonlySet<string> = new Set(Object.values(EXIT_CODE_VALUES));

/** The tag's value as a report; undefined for a value no start script writes. */
export function exitReportOf(value: string | undefined): ExitReport | undefined {
  if (value === undefined) return undefined;
  if (/^\d{1,3}$/.test(value)) return Number(value);
  return EXIT_WORDS.has(value) ? (value as ExitReport) : undefined;
}

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
  /** The start script's report (TAG_EXIT_CODE), whatever the state; instanceFromRecord uses it only once ended. */
  readonly exit?: ExitReport;
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
  const exit = exitReportOf(tags.get(TAG_EXIT_CODE));
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
    ...(exit !== undefined ? { exit } : {}),
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

interface EndReason {
  readonly state: InstanceState;
  readonly message?: string;
  /** The cloud took the instance (spot interruption): its runner did not end on its own. */
  readonly interrupted?: boolean;
}

/** Why an ended instance ended: the start script's report first, then EC2's state reason. */
function endReason(record: Ec2InstanceRecord): EndReason {
  const code = record.reasonCode ?? '';
  switch (record.exit) {
    case undefined:
      break;
    case EXIT_CODE_VALUES.interrupted:
      return {
        state: 'failed',
        message: `spot instance interrupted by AWS (the instance saw the interruption notice${code ? `; ${code}` : ''})`,
        interrupted: true,
      };
    case EXIT_CODE_VALUES.noParameter:
      return {
        state: 'failed',
        message:
          'the start script gave up waiting for its runner parameter (see the instance console output)',
      };
    case EXIT_CODE_VALUES.startFailed:
      return {
        state: 'failed',
        message: 'the start script gave up before the runner ran (see the instance console output)',
      };
    default:
      return record.exit === 0
        ? { state: 'succeeded' }
        : { state: 'failed', message: `runner exited with code ${record.exit}` };
  }
  if (code === 'Client.InstanceInitiatedShutdown') return { state: 'succeeded' };
  if (isSpotInterruption(record)) {
    return { state: 'failed', message: `spot instance interrupted by AWS (${code})`, interrupted: true };
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

/** An ended instance the cloud took from under its runner (see Instance.interrupted). */
export function isInterrupted(record: Ec2InstanceRecord): boolean {
  return !isLive(record) && endReason(record).interrupted === true;
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
  return {
    ...base,
    state: ended.state,
    ...(ended.message !== undefined ? { message: ended.message } : {}),
    ...(ended.interrupted === true ? { interrupted: true } : {}),
  };
}
