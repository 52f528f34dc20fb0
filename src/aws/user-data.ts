/**
 * The default EC2 user data: a bash script that exports the start script's settings and runs the start script
 * (src/aws/start-script/runner-start.sh, embedded). It holds settings only, never a secret: the runner's
 * registration reaches the instance as its SSM parameter (src/aws/runner-parameter.ts), which the start script
 * reads. The ec2 provider passes it to RunInstances; deploy/aws puts it into a launch template.
 *
 * Each setting is written as "use the environment's value when set, else this one", so the same user data runs
 * unchanged under the EC2 bridge (src/sim/ec2-bridge), which presets paths such as RUNNER_FLEET_RUNNER_DIR.
 */
import { START_SCRIPT, START_SCRIPT_VERSION } from './start-script/script.generated.js';

export { START_SCRIPT, START_SCRIPT_VERSION };

/** EC2 refuses user data larger than 16 KB, counted before base64. */
export const USER_DATA_MAX_BYTES = 16_384;

export interface UserDataSettings {
  /** SSM parameter prefix: the instance reads `<ssmPrefix>/<instance id>` (runnerParameterName). */
  readonly ssmPrefix: string;
  /** Where actions/runner is installed on the image. Default /opt/actions-runner. */
  readonly runnerDir?: string;
  /** User the runner runs as; default: the user running the user data (root on EC2). */
  readonly runAs?: string;
  /** Absolute paths on the image, passed to the runner as ACTIONS_RUNNER_HOOK_JOB_STARTED / _COMPLETED. */
  readonly hooks?: { readonly jobStarted?: string; readonly jobCompleted?: string };
  /** The operator's own bash commands, run as root before the runner starts (install tools, ...). */
  readonly preRunnerScript?: string;
  /** Run when the runner is done (or cannot start). Default `shutdown -h now`. */
  readonly shutdownCommand?: string;
  /** How long the start script waits for its SSM parameter. Default 600. */
  readonly parameterTimeoutSeconds?: number;
}

export type UserDataErrorCode = 'bad-user-data-setting' | 'user-data-too-large';

export class UserDataError extends Error {
  readonly code: UserDataErrorCode;
  constructor(code: UserDataErrorCode, message: string) {
    super(message);
    this.name = 'UserDataError';
    this.code = code;
  }
}

const PRE_RUNNER_EOF = 'RUNNER_FLEET_PRE_RUNNER_EOF';
const START_SCRIPT_EOF = 'RUNNER_FLEET_START_SCRIPT_EOF';

/** UTF-8 size: what EC2 counts against USER_DATA_MAX_BYTES. */
export function userDataBytes(userData: string): number {
  return Buffer.byteLength(userData, 'utf8');
}

/** Throws `user-data-too-large` when EC2 would refuse the user data. */
export function checkUserDataSize(userData: string): void {
  const bytes = userDataBytes(userData);
  if (bytes > USER_DATA_MAX_BYTES) {
    throw new UserDataError(
      'user-data-too-large',
      `user data is ${bytes} bytes; EC2 takes at most ${USER_DATA_MAX_BYTES} (before base64): shorten preRunnerScript, ` +
        'or bake the tools into the image',
    );
  }
}

/** RunInstances and launch templates take user data base64-encoded. */
export function userDataBase64(userData: string): string {
  return Buffer.from(userData, 'utf8').toString('base64');
}

/**
 * The start script without its comment lines, blank lines and indentation (the shebang stays), to leave room in the
 * 16 KB for the operator's pre-runner script. Safe because the script has no heredoc and no multi-line string but
 * backslash-continued lines, which keep their indentation and are never dropped (script.test.ts checks the compact
 * form is valid bash and that no dropped line continues another; the start-script suites run it).
 */
export function compactStartScript(text: string = START_SCRIPT): string {
  const [shebang = '', ...rest] = text.split('\n');
  const kept: string[] = [];
  let continued = false;
  for (const line of rest) {
    if (line.trim() === '' || /^\s*#/.test(line)) continue;
    kept.push(continued ? line : line.trimStart());
    continued = line.endsWith('\\');
  }
  return [shebang, ...kept].join('\n') + '\n';
}

const singleQuoted = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function bad(field: string, message: string): never {
  throw new UserDataError('bad-user-data-setting', `userData.${field}: ${message}`);
}

function absolutePath(field: string, value: string): string {
  if (!value.startsWith('/')) bad(field, `must be an absolute path, not ${JSON.stringify(value)}`);
  if (CONTROL.test(value)) bad(field, 'must not contain control characters (newline, tab, ...)');
  return value;
}

function validPrefix(value: string): string {
  if (!/^(\/[A-Za-z0-9_.-]+)+\/?$/.test(value)) {
    bad(
      'ssmPrefix',
      `must be an SSM parameter path such as /runner-fleet/prod (a leading slash, then letters, digits, _ . - /), ` +
        `not ${JSON.stringify(value)}`,
    );
  }
  if (/^\/(aws|ssm)/i.test(value)) bad('ssmPrefix', 'must not start with /aws or /ssm (reserved by SSM)');
  // The full name, <prefix>/<instance id> (i- and 17 hex digits), must stay under SSM's 1011 characters.
  if (value.length > 900) bad('ssmPrefix', `is ${value.length} characters; at most 900`);
  return value;
}

/** The user data for one scale set. Throws UserDataError naming the bad setting, or when the result is too large. */
export function renderUserData(settings: UserDataSettings): string {
  const vars: [string, string][] = [['RUNNER_FLEET_SSM_PREFIX', validPrefix(settings.ssmPrefix)]];
  if (settings.runnerDir !== undefined) {
    vars.push(['RUNNER_FLEET_RUNNER_DIR', absolutePath('runnerDir', settings.runnerDir)]);
  }
  if (settings.runAs !== undefined && settings.runAs !== '') {
    if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(settings.runAs)) {
      bad(
        'runAs',
        `must be a Linux user name (lower case letters, digits, _ and -), not ${JSON.stringify(settings.runAs)}`,
      );
    }
    vars.push(['RUNNER_FLEET_RUN_AS', settings.runAs]);
  }
  if (settings.hooks?.jobStarted !== undefined) {
    vars.push(['RUNNER_FLEET_HOOK_JOB_STARTED', absolutePath('hooks.jobStarted', settings.hooks.jobStarted)]);
  }
  if (settings.hooks?.jobCompleted !== undefined) {
    vars.push([
      'RUNNER_FLEET_HOOK_JOB_COMPLETED',
      absolutePath('hooks.jobCompleted', settings.hooks.jobCompleted),
    ]);
  }
  if (settings.shutdownCommand !== undefined) {
    if (settings.shutdownCommand.trim() === '')
      bad('shutdownCommand', 'must not be empty (use `true` to keep the instance)');
    if (CONTROL.test(settings.shutdownCommand)) bad('shutdownCommand', 'must be one line');
    vars.push(['RUNNER_FLEET_SHUTDOWN_COMMAND', settings.shutdownCommand]);
  }
  if (settings.parameterTimeoutSeconds !== undefined) {
    const t = settings.parameterTimeoutSeconds;
    if (!Number.isSafeInteger(t) || t < 1)
      bad('parameterTimeoutSeconds', `must be a whole number of seconds >= 1, not ${t}`);
    vars.push(['RUNNER_FLEET_PARAMETER_TIMEOUT', String(t)]);
  }

  const lines = [
    '#!/bin/bash',
    `# runner-fleet user data, start script version ${START_SCRIPT_VERSION} (docs/ec2-start-script.md). It holds no`,
    '# secret: the runner registration is the SSM parameter <RUNNER_FLEET_SSM_PREFIX>/<instance id>.',
    '# A setting already in the environment wins over the value written here.',
    'set -eu',
    ...vars.map(([name, value]) => `[ -n "\${${name}:-}" ] || ${name}=${singleQuoted(value)}`),
    `export ${vars.map(([name]) => name).join(' ')}`,
    'runner_fleet_dir=$(mktemp -d "${TMPDIR:-/tmp}/runner-fleet.XXXXXX")',
  ];
  if (settings.preRunnerScript !== undefined && settings.preRunnerScript.trim() !== '') {
    const script = settings.preRunnerScript;
    if (script.includes('\u0000')) bad('preRunnerScript', 'must not contain NUL characters');
    if (script.split(/\r?\n/).some((line) => line === PRE_RUNNER_EOF)) {
      bad('preRunnerScript', `must not contain a line ${PRE_RUNNER_EOF} (it ends the embedded script)`);
    }
    lines.push(
      `cat >"$runner_fleet_dir/pre-runner.sh" <<'${PRE_RUNNER_EOF}'`,
      script.endsWith('\n') ? script.slice(0, -1) : script,
      PRE_RUNNER_EOF,
      'export RUNNER_FLEET_PRE_RUNNER_SCRIPT="$runner_fleet_dir/pre-runner.sh"',
    );
  }
  lines.push(
    `cat >"$runner_fleet_dir/runner-start.sh" <<'${START_SCRIPT_EOF}'`,
    compactStartScript().slice(0, -1),
    START_SCRIPT_EOF,
    'exec bash "$runner_fleet_dir/runner-start.sh"',
  );
  const userData = lines.join('\n') + '\n';
  checkUserDataSize(userData);
  return userData;
}
