/**
 * The runner parameter: what an EC2 instance needs to become a runner, delivered as one SSM SecureString per instance
 * at `<prefix>/<instance id>`, readable (and deletable) only by that instance. The start script
 * (src/aws/start-script) reads it, deletes it, and registers the runner.
 *
 * Format, version 1: one `key=value` line per field, every value base64 (standard alphabet, no line breaks) of its
 * UTF-8 text, so the script reads it with `read` and `base64 -d` alone: no eval, no JSON tool on the image.
 *   jit:   version, mode=jit, jitconfig
 *   token: version, mode=token, url, token, name, labels (comma-separated), runnergroup, ephemeral (true|false)
 * Unknown keys are ignored by readers, so a later version can add fields.
 */
export const RUNNER_PARAMETER_VERSION = '1';

export type RunnerParameter =
  | { readonly mode: 'jit'; readonly jitConfig: string }
  | {
      readonly mode: 'token';
      /** Web URL of the scope, e.g. https://github.com/octo-org */
      readonly url: string;
      readonly token: string;
      readonly name: string;
      readonly labels: readonly string[];
      readonly runnerGroup: string;
      readonly ephemeral: boolean;
    };

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** The SSM parameter's value. Contains the secret: never log it. */
export function encodeRunnerParameter(parameter: RunnerParameter): string {
  const fields: [string, string][] = [
    ['version', RUNNER_PARAMETER_VERSION],
    ['mode', parameter.mode],
  ];
  if (parameter.mode === 'jit') fields.push(['jitconfig', parameter.jitConfig]);
  else {
    fields.push(
      ['url', parameter.url],
      ['token', parameter.token],
      ['name', parameter.name],
      ['labels', parameter.labels.join(',')],
      ['runnergroup', parameter.runnerGroup],
      ['ephemeral', String(parameter.ephemeral)],
    );
  }
  return fields.map(([key, value]) => `${key}=${b64(value)}`).join('\n') + '\n';
}

export class RunnerParameterError extends Error {
  readonly code = 'bad-runner-parameter';
}

/** Reads a value written by encodeRunnerParameter (tests, the EC2 bridge). Errors never quote the value. */
export function decodeRunnerParameter(value: string): RunnerParameter {
  const fields = new Map<string, string>();
  for (const line of value.split('\n')) {
    if (line === '') continue;
    const at = line.indexOf('=');
    if (at <= 0) throw new RunnerParameterError('runner parameter: a line without key=value');
    fields.set(line.slice(0, at), Buffer.from(line.slice(at + 1), 'base64').toString('utf8'));
  }
  const get = (key: string): string => {
    const v = fields.get(key);
    if (v === undefined) throw new RunnerParameterError(`runner parameter: missing ${key}`);
    return v;
  };
  if (get('version') !== RUNNER_PARAMETER_VERSION) {
    throw new RunnerParameterError(`runner parameter: unsupported version ${JSON.stringify(get('version'))}`);
  }
  const mode = get('mode');
  if (mode === 'jit') return { mode, jitConfig: get('jitconfig') };
  if (mode === 'token') {
    return {
      mode,
      url: get('url'),
      token: get('token'),
      name: get('name'),
      labels: get('labels') === '' ? [] : get('labels').split(','),
      runnerGroup: get('runnergroup'),
      ephemeral: get('ephemeral') === 'true',
    };
  }
  throw new RunnerParameterError(`runner parameter: unknown mode ${JSON.stringify(mode)}`);
}

/** `<prefix>/<instance id>`: the parameter of one instance. The prefix has no trailing slash. */
export function runnerParameterName(prefix: string, instanceId: string): string {
  return `${prefix.replace(/\/+$/, '')}/${instanceId}`;
}
