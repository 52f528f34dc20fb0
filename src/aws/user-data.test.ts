import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startImds } from '../sim/ec2/imds.js';
import { encodeRunnerParameter } from './runner-parameter.js';
import {
  USER_DATA_MAX_BYTES,
  UserDataError,
  checkUserDataSize,
  renderUserData,
  userDataBase64,
  userDataBytes,
} from './user-data.js';
import type { UserDataSettings } from './user-data.js';

const FULL: UserDataSettings = {
  ssmPrefix: '/runner-fleet/prod',
  runnerDir: '/opt/actions runner',
  runAs: 'runner',
  hooks: { jobStarted: '/opt/hooks/started.sh', jobCompleted: "/opt/hooks/it's done.sh" },
  preRunnerScript: 'apt-get install -y jq\necho "tools ready"\n',
  shutdownCommand: 'systemctl poweroff',
  parameterTimeoutSeconds: 120,
};

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function errorOf(fn: () => unknown): UserDataError {
  try {
    fn();
  } catch (error) {
    if (error instanceof UserDataError) return error;
    throw error;
  }
  throw new Error('expected a UserDataError');
}

describe('renderUserData', () => {
  it('is a bash script that sets every setting and embeds the start script', () => {
    const userData = renderUserData(FULL);
    expect(userData.startsWith('#!/bin/bash\n')).toBe(true);
    expect(spawnSync('bash', ['-n'], { input: userData, encoding: 'utf8' }).status).toBe(0);
    expect(userData).toContain(`RUNNER_FLEET_SSM_PREFIX='/runner-fleet/prod'`);
    expect(userData).toContain(`RUNNER_FLEET_RUNNER_DIR='/opt/actions runner'`);
    expect(userData).toContain(`RUNNER_FLEET_HOOK_JOB_COMPLETED='/opt/hooks/it'\\''s done.sh'`);
    expect(userData).toContain('RUNNER_FLEET_START_SCRIPT_VERSION=2');
    expect(userData).toContain('apt-get install -y jq');
    expect(userData.trimEnd().split('\n').pop()).toBe('exec bash "$runner_fleet_dir/runner-start.sh"');
  });

  it('runs the settings through the start script; a preset environment wins over a written value', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rf-user-data-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(dir, 'run.sh'), 0o755);
    // The AWS CLI is a stub that records its arguments: the give-up is reported as a tag on the instance.
    writeFileSync(join(dir, 'aws'), `#!/bin/sh\necho "$*" >>'${join(dir, 'aws-calls')}'\n`);
    chmodSync(join(dir, 'aws'), 0o755);
    const userData = renderUserData({
      ...FULL,
      runAs: undefined,
      hooks: undefined,
      preRunnerScript:
        'echo "pre-runner sees $RUNNER_FLEET_SSM_PREFIX in $RUNNER_FLEET_RUNNER_DIR"\nexit 7\n',
      shutdownCommand: 'echo SHUTDOWN-CALLED',
    });
    const imds = await startImds({ instanceId: 'i-0123456789abcdef0', region: 'eu-west-1' });
    try {
      const child = spawn('bash', ['-s'], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          TMPDIR: dir,
          RUNNER_FLEET_RUNNER_DIR: dir,
          RUNNER_FLEET_AWS_CLI: join(dir, 'aws'),
          RUNNER_FLEET_IMDS_ENDPOINT: imds.url,
          RUNNER_FLEET_SYSLOG: 'false',
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.stdin.end(userData);
      const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
      expect(stdout).toContain(`pre-runner sees /runner-fleet/prod in ${dir}`);
      expect(stderr).toContain('the pre-runner script failed with exit code 7');
      expect(stderr).toContain('tagged the instance runner-fleet:exit-code=start-failed');
      expect(readFileSync(join(dir, 'aws-calls'), 'utf8')).toBe(
        'ec2 create-tags --region eu-west-1 --resources i-0123456789abcdef0 --tags ' +
          'Key=runner-fleet:exit-code,Value=start-failed --cli-connect-timeout 5 --cli-read-timeout 10\n',
      );
      expect(stdout).toContain('SHUTDOWN-CALLED');
      expect(status).toBe(1);
    } finally {
      await imds.close();
    }
  });

  it('never contains a secret: settings have no place for one', () => {
    const secret = 'jit-SECRET-3f9a1c';
    const parameter = encodeRunnerParameter({ mode: 'jit', jitConfig: secret });
    const settings = { ...FULL, registration: { mode: 'jit', jitConfig: secret }, parameter };
    // @ts-expect-error a registration is not a user data setting
    const fromLiteral = () => renderUserData({ ssmPrefix: '/x', registration: { jitConfig: secret } });
    for (const userData of [renderUserData(settings), fromLiteral()]) {
      expect(userData).not.toContain(secret);
      expect(userData).not.toContain(Buffer.from(secret).toString('base64'));
      expect(userData).not.toContain(parameter.trim().split('\n')[2]);
    }
  });

  it.each<[string, Partial<UserDataSettings>, RegExp]>([
    ['ssmPrefix', { ssmPrefix: 'runner-fleet' }, /userData\.ssmPrefix: must be an SSM parameter path/],
    ['ssmPrefix', { ssmPrefix: '/aws/runners' }, /userData\.ssmPrefix: must not start with \/aws/],
    ['ssmPrefix', { ssmPrefix: '/a b' }, /userData\.ssmPrefix/],
    ['runnerDir', { runnerDir: 'opt/runner' }, /userData\.runnerDir: must be an absolute path/],
    ['runnerDir', { runnerDir: '/opt/run\nner' }, /userData\.runnerDir: must not contain control characters/],
    ['runAs', { runAs: 'Runner User' }, /userData\.runAs: must be a Linux user name/],
    ['hooks', { hooks: { jobStarted: 'hook.sh' } }, /userData\.hooks\.jobStarted: must be an absolute path/],
    ['hooks', { hooks: { jobCompleted: './done.sh' } }, /userData\.hooks\.jobCompleted/],
    ['shutdownCommand', { shutdownCommand: ' ' }, /userData\.shutdownCommand: must not be empty/],
    ['shutdownCommand', { shutdownCommand: 'a\nb' }, /userData\.shutdownCommand: must be one line/],
    ['parameterTimeoutSeconds', { parameterTimeoutSeconds: 0 }, /userData\.parameterTimeoutSeconds/],
    [
      'preRunnerScript',
      { preRunnerScript: 'x\nRUNNER_FLEET_PRE_RUNNER_EOF\ny' },
      /userData\.preRunnerScript/,
    ],
  ])('refuses a bad %s, naming it', (_field, change, message) => {
    const error = errorOf(() => renderUserData({ ssmPrefix: '/runner-fleet/prod', ...change }));
    expect(error.code).toBe('bad-user-data-setting');
    expect(error.message).toMatch(message);
  });
});

describe('user data size', () => {
  it('leaves room for a pre-runner script of about 4 KB', () => {
    const bytes = userDataBytes(renderUserData(FULL));
    expect(bytes).toBeLessThan(USER_DATA_MAX_BYTES - 4_000);
  });

  it('refuses user data over 16 KB (before base64), counted in UTF-8 bytes', () => {
    const error = errorOf(() =>
      renderUserData({ ssmPrefix: '/runner-fleet/prod', preRunnerScript: `# ${'é'.repeat(4_000)}\n` }),
    );
    expect(error.code).toBe('user-data-too-large');
    expect(error.message).toMatch(/user data is \d+ bytes; EC2 takes at most 16384/);
    expect(() => checkUserDataSize('x'.repeat(USER_DATA_MAX_BYTES))).not.toThrow();
    expect(() => checkUserDataSize('x'.repeat(USER_DATA_MAX_BYTES + 1))).toThrow(UserDataError);
  });

  it('encodes to base64 for RunInstances', () => {
    const userData = renderUserData({ ssmPrefix: '/p' });
    expect(Buffer.from(userDataBase64(userData), 'base64').toString('utf8')).toBe(userData);
  });
});
