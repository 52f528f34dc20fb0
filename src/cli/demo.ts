/**
 * `runner-fleet demo` (what `npm start` runs): the GitHub simulator, a controller and a workload in one process, on
 * this machine, with no account and no network. Progress while it runs, the dashboard URL at the start, a summary at
 * the end; exit 0 only when every routable job completed and nothing leaked.
 */
import { parseArgs } from 'node:util';
import type { Command, CommandIo } from './command.js';
import { UsageError } from './command.js';
import { checkDemoEndpoint } from '../demo/ec2-endpoint.js';
import type { DemoSummary } from '../demo/summary.js';
import type { DemoKubernetes } from '../demo/kubernetes.js';
import type { DemoEc2 } from '../demo/ec2.js';

// The controller, simulator and config modules load when the demo runs, not when `--help` lists commands.

const DEFAULT_JOBS = 150;
/** EC2 runners cost a bash start script, AWS CLI calls and a runner process each on this machine: fewer jobs. */
const DEFAULT_EC2_JOBS = 40;
const DEFAULT_DURATION = '20s';

const usage = `Usage: runner-fleet demo [--jobs N] [--duration D] [--config F] [--port P] [--keep] [--json]
                        [--keep-logs]
                        [--provider kubernetes [--kubeconfig F] [--namespace NS]]
                        [--provider ec2 --aws-endpoint URL]

Runs the whole system on this machine, with no GitHub account and no network: a local GitHub simulator, a
runner-fleet controller (the same one \`start\` runs) with its dashboard, and a workload of jobs. Runners are
emulated: local processes for one scale set, instances of the simulator's cloud for the others.

The built-in fleet has four scale sets: linux-process (ephemeral JIT runners as child processes, max 8),
linux-cloud (ephemeral JIT runners on the simulated cloud, max 60), linux-listener (the same, learning of its jobs
from GitHub's runner scale set message queue instead of webhooks, max 16) and app-persistent (persistent token-mode
runners, minIdle 1). The workload queues a steady trickle of jobs of different durations, a 50-job matrix burst,
one job that gets cancelled, and one job whose labels no scale set serves (it shows up as unroutable).

Options:
  --jobs <n>        jobs to queue (default ${DEFAULT_JOBS}; ${DEFAULT_EC2_JOBS} with --provider ec2)
  --duration <d>    span over which the jobs are queued (default ${DEFAULT_DURATION})
  --config <file>   run your own fleet.yaml instead, against the simulator: its github, webhook, server and
                    store sections are replaced, process runners become emulated runners, other providers the
                    simulated cloud, and idle timeouts are capped at 10s
  --port <p>        controller port for the dashboard (default: a free port, printed at the start)
  --keep            keep serving the dashboard after the summary, until Ctrl-C
  --keep-logs       keep the controller log (and the store) after a successful run; its path is printed at the end
  --json            print exactly one JSON object (the summary) on stdout; progress goes to stderr
  --provider kubernetes
                    run the runners as pods on a Kubernetes cluster with no kubelet for them (kwok, such as
                    \`npm run testenv -- up\`): two built-in scale sets of ephemeral runners (k8s-linux, max 20;
                    k8s-large, max 8), or the kubernetes scale sets of --config; the controller checks its rights
                    first, as \`start\` does, and a bridge plays the kubelet: it runs an emulated runner for each
                    Running runner pod, with the JIT config read from the pod's Secret, and marks the pod Succeeded
                    when the runner exits
  --kubeconfig <f>  the cluster (default: $KUBECONFIG or ~/.kube/config)
  --namespace <ns>  namespace of the built-in runner pods, created if missing (default runner-fleet-demo)
  --provider ec2    run the runners on EC2 instances in a local AWS endpoint (moto; never real AWS): two built-in
                    scale sets, ec2-spot (ephemeral JIT runners on spot instances from a launch template over
                    three instance types and two subnets, max 12) and ec2-persistent (persistent token-mode
                    runners on on-demand instances from an AMI, max 3), or the ec2 scale sets of --config with
                    their AMI, launch template, subnets and instance profile replaced by the demo's. The demo
                    creates what they need in the endpoint (instance role and profile, launch template; the AMI,
                    subnets and security group are the endpoint's defaults), and a bridge plays the machines: it
                    runs each instance's user data with bash, the AWS CLI and the runner emulator (bash, curl and
                    aws must be on PATH). It fails unless, at the end, no instance of the fleet is pending or
                    running and no runner parameter is left in SSM.
  --aws-endpoint <url>
                    the AWS endpoint for --provider ec2 (required), e.g. http://127.0.0.1:5000 for moto_server

The controller's log goes to a file in a temporary directory (printed at the start); the directory is removed
after a successful run unless --keep-logs is given, and kept otherwise; the end of the output says which.

Exit codes: 0 every routable job completed and nothing leaked; 1 otherwise; 2 bad usage or configuration;
130 interrupted.`;

interface DemoArgs {
  readonly jobs: number;
  readonly durationMs: number;
  readonly configPath?: string;
  readonly port: number;
  readonly keep: boolean;
  readonly keepLogs: boolean;
  readonly json: boolean;
  readonly kubernetes?: { readonly kubeconfig?: string; readonly namespace: string };
  readonly ec2?: { readonly endpoint: string };
}

function parse(argv: string[], parseDuration: (text: string) => number | undefined): DemoArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        jobs: { type: 'string' },
        duration: { type: 'string' },
        config: { type: 'string' },
        port: { type: 'string' },
        keep: { type: 'boolean' },
        'keep-logs': { type: 'boolean' },
        json: { type: 'boolean' },
        provider: { type: 'string' },
        kubeconfig: { type: 'string' },
        namespace: { type: 'string' },
        'aws-endpoint': { type: 'string' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const provider = values.provider as string | undefined;
  if (provider !== undefined && provider !== 'kubernetes' && provider !== 'ec2')
    throw new UsageError(
      `--provider must be kubernetes or ec2 (the default demo mixes processes and a simulated cloud)`,
    );
  if (provider !== 'kubernetes' && (values.kubeconfig !== undefined || values.namespace !== undefined))
    throw new UsageError('--kubeconfig and --namespace go with --provider kubernetes');
  const awsEndpoint = values['aws-endpoint'] as string | undefined;
  if (provider !== 'ec2' && awsEndpoint !== undefined)
    throw new UsageError('--aws-endpoint goes with --provider ec2');
  if (provider === 'ec2' && awsEndpoint === undefined)
    throw new UsageError(
      '--provider ec2 needs --aws-endpoint URL: a local AWS endpoint such as moto (e.g. moto_server -p 5000, then ' +
        '--aws-endpoint http://127.0.0.1:5000); the demo never uses real AWS',
    );
  if (awsEndpoint !== undefined) {
    const checked = checkDemoEndpoint(awsEndpoint);
    if (!checked.ok) throw new UsageError(checked.message);
  }
  const defaultJobs = provider === 'ec2' ? DEFAULT_EC2_JOBS : DEFAULT_JOBS;
  const jobsText = (values.jobs as string | undefined) ?? String(defaultJobs);
  const jobs = Number(jobsText);
  if (!/^\d+$/.test(jobsText) || jobs < 1 || jobs > 10_000)
    throw new UsageError(`--jobs must be a whole number from 1 to 10000, got ${jobsText}`);
  const durationText = (values.duration as string | undefined) ?? DEFAULT_DURATION;
  const durationMs = parseDuration(durationText);
  if (durationMs === undefined || durationMs > 3_600_000)
    throw new UsageError(`--duration must be a duration up to 1h (e.g. 20s, 2m), got ${durationText}`);
  const portText = (values.port as string | undefined) ?? '0';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65_535)
    throw new UsageError(`--port must be 0 to 65535, got ${portText}`);
  const kubernetes =
    provider === 'kubernetes'
      ? {
          namespace: (values.namespace as string | undefined) ?? 'runner-fleet-demo',
          ...(typeof values.kubeconfig === 'string' ? { kubeconfig: values.kubeconfig } : {}),
        }
      : undefined;
  return {
    jobs,
    durationMs,
    ...(kubernetes ? { kubernetes } : {}),
    ...(provider === 'ec2' && awsEndpoint !== undefined ? { ec2: { endpoint: awsEndpoint } } : {}),
    ...(typeof values.config === 'string' ? { configPath: values.config } : {}),
    port,
    keep: values.keep === true,
    keepLogs: values['keep-logs'] === true,
    json: values.json === true,
  };
}

const isTty = (stream: NodeJS.WritableStream) => (stream as { isTTY?: boolean }).isTTY === true;

/** The summary object of `--json`: the keys README documents first. */
function summaryJson(summary: DemoSummary, url: string): Record<string, unknown> {
  return { ...summary, dashboardUrl: url };
}

export const command: Command = {
  summary: 'Run simulator, controller, dashboard and a workload on this machine; print what happened',
  usage,
  async run(argv: string[], io: CommandIo): Promise<number> {
    const { parseDuration } = await import('../lib/duration.js');
    const args = parse(argv, parseDuration);
    const [
      { formatProblem },
      { DemoConfigError },
      { ProgressRenderer },
      { runDemo },
      { formatSummary },
      controller,
    ] = await Promise.all([
      import('../config/problem.js'),
      import('../demo/fleet.js'),
      import('../demo/progress.js'),
      import('../demo/run-demo.js'),
      import('../demo/summary.js'),
      import('../demo/controller.js'),
    ]);
    // Progress and notes: stdout normally, stderr when stdout carries the JSON summary.
    const out = args.json ? io.stderr : io.stdout;
    const progress = new ProgressRenderer({
      stream: out,
      tty: isTty(out),
      columns: (out as { columns?: number }).columns ?? 100,
    });
    const abort = new AbortController();
    let stopKeeping: (() => void) | null = null;
    let signals = 0;
    const onSignal = () => {
      signals++;
      if (signals > 1) process.exit(130);
      abort.abort();
      stopKeeping?.();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    /** A provider's demo set-up failed: exit 2 for a config problem (listed), 1 otherwise. */
    const setupFailed = (error: unknown): number => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      io.stderr.write(`runner-fleet demo: ${(error as Error).message}\n`);
      if (!(error instanceof DemoConfigError)) return 1;
      for (const problem of error.problems) io.stderr.write(`${formatProblem(problem)}\n`);
      return 2;
    };
    let kube: DemoKubernetes | undefined;
    if (args.kubernetes) {
      const { prepareDemoKubernetes } = await import('../demo/kubernetes.js');
      try {
        kube = await prepareDemoKubernetes({
          ...args.kubernetes,
          ...(args.configPath ? { configPath: args.configPath } : {}),
          env: io.env,
        });
      } catch (error) {
        return setupFailed(error);
      }
    }
    let ec2: DemoEc2 | undefined;
    if (args.ec2) {
      const { prepareDemoEc2 } = await import('../demo/ec2.js');
      try {
        out.write(`Setting up the fleet's EC2 world at ${args.ec2.endpoint} ...\n`);
        ec2 = await prepareDemoEc2({
          endpoint: args.ec2.endpoint,
          ...(args.configPath ? { configPath: args.configPath } : {}),
          env: io.env,
        });
      } catch (error) {
        return setupFailed(error);
      }
    }
    let printed = false;
    const print = (summary: DemoSummary, url: string) => {
      if (printed) return;
      printed = true;
      progress.finish();
      if (args.json) io.stdout.write(`${JSON.stringify(summaryJson(summary, url))}\n`);
      else io.stdout.write(`\n${formatSummary(summary)}`);
    };
    try {
      out.write(
        `runner-fleet demo: GitHub simulator, controller and ${args.jobs} jobs on this machine ` +
          `(no GitHub account, no network)\n`,
      );
      const result = await runDemo({
        jobs: args.jobs,
        durationMs: args.durationMs,
        ...(args.configPath ? { configPath: args.configPath } : {}),
        port: args.port,
        keepFiles: args.keepLogs,
        env: io.env,
        signal: abort.signal,
        controllerFactory: controller.demoControllerFactory(
          io.env,
          kube ? { kubernetes: kube.factory } : ec2 ? { ec2: ec2.factory } : undefined,
        ),
        ...(kube ? { kubernetes: { namespace: kube.namespace, startRunners: kube.startRunners } } : {}),
        ...(ec2
          ? {
              ec2: {
                world: ec2.world,
                startRunners: (fleet: string) => ec2!.startRunners(fleet),
                census: (config, since) => ec2!.census(config, since),
                awsCalls: () => ec2!.factory.stats.calls,
                machineOutput: () => ec2!.machineOutput(),
              },
              // Each EC2 runner is a bash start script, AWS CLI calls and a runner process on this machine.
              completionTimeoutMs: 240_000,
              drainTimeoutMs: 120_000,
            }
          : {}),
        createLogger: controller.fileLogger,
        onReady: ({ url, logFile, notes }) => {
          out.write(`Dashboard:      ${url}/\n`);
          out.write(`Controller log: ${logFile}\n`);
          for (const note of notes) out.write(`Note: ${note}\n`);
          out.write('\n');
        },
        onProgress: (frame) => progress.update(frame),
        ...(args.keep
          ? {
              keepUntil: async ({ url, summary }) => {
                print(summary, url);
                out.write(`\nStill serving the dashboard at ${url}/ (--keep). Press Ctrl-C to stop.\n`);
                await new Promise<void>((resolve) => {
                  stopKeeping = resolve;
                  if (abort.signal.aborted) resolve();
                });
              },
            }
          : {}),
      });
      print(result.summary, result.url);
      if (result.interrupted) {
        out.write('runner-fleet demo: interrupted; everything it started was stopped.\n');
        if (result.dir)
          out.write(`Controller log kept: ${result.logFile} (store and logs in ${result.dir})\n`);
        return 130;
      }
      if (result.dir) out.write(`Controller log kept: ${result.logFile} (store and logs in ${result.dir})\n`);
      else
        out.write(
          'Controller log removed with its directory after the successful run (--keep-logs keeps it)\n',
        );
      return result.summary.ok ? 0 : 1;
    } catch (error) {
      if (error instanceof DemoConfigError) {
        io.stderr.write(`runner-fleet demo: ${error.message}\n`);
        for (const problem of error.problems) io.stderr.write(`${formatProblem(problem)}\n`);
        return 2;
      }
      throw error;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await kube?.close();
      await ec2?.close();
    }
  },
};
