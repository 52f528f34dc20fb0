/**
 * `runner-fleet emulate-runner`: an actions/runner stand-in that talks to the GitHub simulator. Like the real
 * runner it takes a JIT config from ACTIONS_RUNNER_INPUT_JITCONFIG (or --jitconfig), or config.sh-style flags for
 * token mode; every flag can also come from ACTIONS_RUNNER_INPUT_<FLAG> (upper case, dashes as underscores), which
 * is how runner-fleet passes the token without putting it in argv. With --runner-root it splits token mode as the
 * real runner does: `--config-only` plays config.sh (writes the runner's settings files), and a later run without a
 * registration plays run.sh (starts from them). ACTIONS_RUNNER_HOOK_JOB_STARTED / _COMPLETED name job hooks.
 * Logs go to stderr, never a secret.
 */
import { parseArgs } from 'node:util';
import type { Command, CommandIo } from './command.js';
import { UsageError } from './command.js';
import {
  ExitCode,
  configureEmulatedRunner,
  readRunnerConfig,
  runEmulatedRunner,
  writeRunnerConfig,
} from '../sim/runner/index.js';
import type { EmulatorRegistration, JobHooks, TokenRegistration } from '../sim/runner/index.js';

const usage = `Usage: runner-fleet emulate-runner [options]

Runs an emulated GitHub Actions runner against the runner-fleet GitHub simulator. It behaves like
actions/runner from the outside: it registers, comes online, takes jobs whose labels it serves, and exits 0
after one job when ephemeral (a JIT runner always is).

JIT mode (run.sh --jitconfig):
  --jitconfig <b64>       encoded JIT config; prefer the environment variable ACTIONS_RUNNER_INPUT_JITCONFIG

Token mode (config.sh --unattended ... then run.sh):
  --url <url>             web URL of the scope: <simulator>/ORG, <simulator>/OWNER/REPO, <simulator>/enterprises/ENT
  --token <token>         registration token; prefer ACTIONS_RUNNER_INPUT_TOKEN (argv is visible to other users)
  --name <name>           runner name
  --labels <a,b,c>        custom labels, comma-separated
  --runnergroup <group>   runner group (default: Default)
  --ephemeral             take one job, then exit
  --no-default-labels     do not add self-hosted, Linux, X64
  --replace               replace a runner of the same name
  --unattended, --work <dir>, --disableupdate   accepted for config.sh compatibility; no effect

config.sh and run.sh as separate steps (token mode, as the real runner):
  --runner-root <dir>     the runner's root folder, where config.sh keeps .runner, .credentials and
                          .credentials_rsaparams (mode 0600)
  --config-only           config.sh: register with the token-mode options, write the files to
                          --runner-root, exit 0 (1 on failure)
  With --runner-root and neither a JIT config nor --url, the runner starts from those files (run.sh),
  as often as it is run.

Job hooks (as actions/runner): ACTIONS_RUNNER_HOOK_JOB_STARTED and ACTIONS_RUNNER_HOOK_JOB_COMPLETED hold
absolute paths of scripts run with \`bash -e\` before and after each job. A failing started hook fails the
job without running it; a failing completed hook fails the job. The scripts get this environment without
ACTIONS_RUNNER_INPUT_*, plus GITHUB_RUN_ID, GITHUB_JOB, GITHUB_REPOSITORY, GITHUB_REPOSITORY_OWNER and RUNNER_NAME.

Every option may also be set as ACTIONS_RUNNER_INPUT_<OPTION> (upper case, dashes as underscores), e.g.
ACTIONS_RUNNER_INPUT_URL, ACTIONS_RUNNER_INPUT_NO_DEFAULT_LABELS=true. Command-line values win.

RUNNER_FLEET_EMULATOR_RETRY_MS: how long to keep retrying an unreachable simulator (default 60000).

Exit codes (as actions/runner): 0 done (or stopped by SIGINT/SIGTERM), 1 bad, used or revoked credentials or
configuration, 2 the simulator could not be reached, 5 another process holds this runner's session.`;

const OPTIONS = {
  jitconfig: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  name: { type: 'string' },
  labels: { type: 'string' },
  runnergroup: { type: 'string' },
  ephemeral: { type: 'boolean' },
  'no-default-labels': { type: 'boolean' },
  replace: { type: 'boolean' },
  unattended: { type: 'boolean' },
  work: { type: 'string' },
  disableupdate: { type: 'boolean' },
  'runner-root': { type: 'string' },
  'config-only': { type: 'boolean' },
} as const;

type OptionName = keyof typeof OPTIONS;

const envName = (option: string) => `ACTIONS_RUNNER_INPUT_${option.replace(/-/g, '_').toUpperCase()}`;

type Invocation =
  | { readonly kind: 'run'; readonly registration: EmulatorRegistration }
  | { readonly kind: 'run-configured'; readonly root: string }
  | { readonly kind: 'configure'; readonly root: string; readonly registration: TokenRegistration };

function parse(argv: string[], env: NodeJS.ProcessEnv): Invocation {
  let values: Partial<Record<OptionName, string | boolean>>;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const str = (option: OptionName): string | undefined => {
    const v = values[option];
    if (typeof v === 'string') return v;
    const e = env[envName(option)];
    return e !== undefined && e !== '' ? e : undefined;
  };
  const flag = (option: OptionName): boolean => {
    if (values[option] === true) return true;
    return /^(true|1|yes)$/i.test(env[envName(option)] ?? '');
  };
  const jitConfig = str('jitconfig');
  const url = str('url');
  const root = typeof values['runner-root'] === 'string' ? values['runner-root'] : undefined;
  const configOnly = values['config-only'] === true;
  if (configOnly && root === undefined) throw new UsageError('--config-only needs --runner-root');
  if (jitConfig !== undefined) {
    if (url !== undefined || values.token !== undefined || values.name !== undefined) {
      throw new UsageError('--jitconfig cannot be combined with the token-mode options');
    }
    if (configOnly)
      throw new UsageError('--config-only is for token mode; a JIT config needs no config step');
    return { kind: 'run', registration: { jitConfig } };
  }
  if (url === undefined) {
    if (configOnly) throw new UsageError('--config-only needs --url (token mode)');
    if (root !== undefined) return { kind: 'run-configured', root };
    throw new UsageError(
      `no JIT config (${envName('jitconfig')} or --jitconfig) and no --url for token mode`,
    );
  }
  const token = str('token');
  const name = str('name');
  if (!token) throw new UsageError(`token mode needs a registration token (${envName('token')} or --token)`);
  if (!name) throw new UsageError('token mode needs --name');
  const labels = (str('labels') ?? '')
    .split(',')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const registration: TokenRegistration = {
    url,
    token,
    name,
    labels,
    runnerGroup: str('runnergroup') ?? 'Default',
    ephemeral: flag('ephemeral'),
    noDefaultLabels: flag('no-default-labels'),
    replace: flag('replace'),
  };
  return configOnly && root !== undefined
    ? { kind: 'configure', root, registration }
    : { kind: 'run', registration };
}

/** The job hooks the environment names, run in that environment less the runner's inputs (the secrets). */
function hooksFrom(env: NodeJS.ProcessEnv): JobHooks | undefined {
  const jobStarted = env.ACTIONS_RUNNER_HOOK_JOB_STARTED || undefined;
  const jobCompleted = env.ACTIONS_RUNNER_HOOK_JOB_COMPLETED || undefined;
  if (jobStarted === undefined && jobCompleted === undefined) return undefined;
  const hookEnv: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('ACTIONS_RUNNER_INPUT_')) hookEnv[key] = value;
  }
  return { jobStarted, jobCompleted, env: hookEnv };
}

export const command: Command = {
  summary: 'Run an emulated Actions runner against the GitHub simulator',
  usage,
  async run(argv: string[], io: CommandIo): Promise<number> {
    const invocation = parse(argv, io.env);
    const retryRaw = io.env.RUNNER_FLEET_EMULATOR_RETRY_MS;
    const retryBudgetMs = retryRaw !== undefined && /^\d+$/.test(retryRaw) ? Number(retryRaw) : undefined;
    const hooks = hooksFrom(io.env);
    const stop = new AbortController();
    const onSignal = () => stop.abort('SIGTERM');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const log = (line: string) =>
      io.stderr.write(`${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}: ${line}\n`);
    const options = {
      signal: stop.signal,
      ...(retryBudgetMs !== undefined ? { retryBudgetMs } : {}),
      ...(hooks !== undefined ? { hooks } : {}),
      log,
    };
    try {
      if (invocation.kind === 'configure') {
        const result = await configureEmulatedRunner(invocation.registration, options);
        if (result.files === undefined) return result.exitCode;
        await writeRunnerConfig(invocation.root, result.files);
        log(`Settings saved in ${invocation.root}`);
        return ExitCode.Success;
      }
      const registration: EmulatorRegistration =
        invocation.kind === 'run'
          ? invocation.registration
          : { configured: await readRunnerConfig(invocation.root) };
      return await runEmulatedRunner(registration, options);
    } catch (error) {
      io.stderr.write(`emulate-runner: ${error instanceof Error ? error.message : String(error)}\n`);
      return ExitCode.TerminatedError;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
