/**
 * `runner-fleet simulate`: the GitHub simulator on its own. Prints one JSON line on stdout with what a client needs
 * (URLs, App id, the path of the App's private key, installations, a PAT, the webhook secret); logs go to stderr.
 * Stops cleanly on SIGINT/SIGTERM and removes the key file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Command, CommandIo } from './command.js';
import { UsageError } from './command.js';
import { startSimulator } from '../sim/github/index.js';
import type { SimulatorOptions } from '../sim/github/index.js';

const usage = `Usage: runner-fleet simulate [options]

Runs the GitHub simulator: GitHub's REST API for self-hosted runners with GitHub App auth, signed workflow_job
webhooks, a runner broker for \`runner-fleet emulate-runner\`, and the control API under /_sim (jobs, stats,
faults, reset, instances). See docs/simulator.md.

Options:
  --port <n>                   port to listen on (default 0: any free port)
  --host <addr>                address to listen on (default 127.0.0.1)
  --ghes                       GitHub Enterprise Server mode: REST API under /api/v3
  --webhook-url <url>          deliver workflow_job webhooks to this URL (also later: PUT /_sim/webhook)
  --webhook-secret <secret>    webhook HMAC secret (default: random; or RUNNER_FLEET_SIM_WEBHOOK_SECRET)
  --org <name>                 organization with the App installed; repeat for more (default: octo-org)
  --enterprise <slug>          enterprise slug (default: octo-ent)
  --rate-limit <n>             primary rate limit per installation per hour (default 5000)
  --secondary-limit <n>        runner-creating POSTs per minute before the secondary limit (default 180)
  --jit-expiry-ms <ms>         lifetime of an unused JIT registration (default 300000)
  --offline-job-timeout-ms <ms>  a lost runner's job fails after this (default 5000)

On start it prints exactly one JSON line on stdout:
  {"baseUrl", "apiUrl", "appId", "privateKeyFile", "installations": [{"id", "account"}], "token", "webhookSecret"}
privateKeyFile is the App's PEM key, written with mode 0600 to a fresh temporary directory.

Example:
  runner-fleet simulate --port 3000 &
  curl -s -X POST localhost:3000/_sim/jobs -d '{"owner":"octo-org","repo":"app","labels":["linux"]}'`;

const OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  ghes: { type: 'boolean' },
  'webhook-url': { type: 'string' },
  'webhook-secret': { type: 'string' },
  org: { type: 'string', multiple: true },
  enterprise: { type: 'string' },
  'rate-limit': { type: 'string' },
  'secondary-limit': { type: 'string' },
  'jit-expiry-ms': { type: 'string' },
  'offline-job-timeout-ms': { type: 'string' },
} as const;

function integer(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, got '${raw}'`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}`);
  return n;
}

export function parseSimulateArgs(argv: string[], env: NodeJS.ProcessEnv): SimulatorOptions {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const webhookUrl = values['webhook-url'];
  if (webhookUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(webhookUrl)) {
    throw new UsageError(`--webhook-url must be an http(s) URL, got '${webhookUrl}'`);
  }
  const orgs = values.org ?? [];
  for (const org of orgs) {
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/.test(org))
      throw new UsageError(`--org '${org}' is not a valid organization name`);
  }
  const secret = values['webhook-secret'] ?? env.RUNNER_FLEET_SIM_WEBHOOK_SECRET;
  if (secret !== undefined && secret.length === 0) throw new UsageError('--webhook-secret must not be empty');
  const options: SimulatorOptions = {
    port: integer('port', values.port, 0, 65535) ?? 0,
    host: values.host ?? '127.0.0.1',
    ghes: values.ghes ?? false,
  };
  if (webhookUrl !== undefined) options.webhookUrl = webhookUrl;
  if (secret !== undefined) options.webhookSecret = secret;
  if (orgs.length > 0) options.orgs = orgs;
  if (values.enterprise !== undefined) options.enterprise = values.enterprise;
  const rate = integer('rate-limit', values['rate-limit'], 1, 10_000_000);
  if (rate !== undefined) options.rateLimitPerHour = rate;
  const secondary = integer('secondary-limit', values['secondary-limit'], 1, 10_000_000);
  if (secondary !== undefined) options.secondaryLimitPerMinute = secondary;
  const expiry = integer('jit-expiry-ms', values['jit-expiry-ms'], 1, 86_400_000);
  if (expiry !== undefined) options.jitExpiryMs = expiry;
  const offline = integer('offline-job-timeout-ms', values['offline-job-timeout-ms'], 1, 86_400_000);
  if (offline !== undefined) options.offlineJobTimeoutMs = offline;
  return options;
}

export const command: Command = {
  summary: 'Run the GitHub simulator (REST API, webhooks, runner broker, control API)',
  usage,
  async run(argv: string[], io: CommandIo): Promise<number> {
    const options = parseSimulateArgs(argv, io.env);
    const logger = pino(
      { name: 'runner-fleet-sim', level: io.env.LOG_LEVEL ?? 'info' },
      io.stderr as pino.DestinationStream,
    );
    const dir = await mkdtemp(path.join(os.tmpdir(), 'runner-fleet-sim-'));
    const privateKeyFile = path.join(dir, 'app.pem');
    let sim;
    try {
      sim = await startSimulator({ ...options, logger });
      await writeFile(privateKeyFile, sim.privateKeyPem, { mode: 0o600 });
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    io.stdout.write(
      `${JSON.stringify({
        baseUrl: sim.baseUrl,
        apiUrl: sim.apiUrl,
        appId: sim.appId,
        privateKeyFile,
        installations: sim.installations,
        token: sim.token,
        webhookSecret: sim.webhookSecret,
      })}\n`,
    );
    logger.info(
      {
        baseUrl: sim.baseUrl,
        apiUrl: sim.apiUrl,
        ghes: sim.ghes,
        orgs: sim.installations.map((i) => i.account),
      },
      'GitHub simulator listening',
    );
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    logger.info({ signal }, 'stopping');
    await sim.close();
    await rm(dir, { recursive: true, force: true });
    return 0;
  },
};
