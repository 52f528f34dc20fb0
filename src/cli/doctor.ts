import { pino } from 'pino';
import type { FleetConfig } from '../core/fleet-config.js';
import { formatKubernetesReport, inspectKubernetesFleet } from '../providers/kubernetes/doctor.js';
import type { Command, CommandIo } from './command.js';
import { UsageError } from './command.js';
import type { CheckLine } from '../app/doctor-github.js';
import { githubChecks } from '../app/doctor-github.js';
import { githubFetch } from '../app/github-fetch.js';
import type { FleetFlags } from './fleet-options.js';
import { loadFleetConfig, parseFleetArgs } from './fleet-options.js';
import { leaderElectionSettings, usesKubernetes, wantsLeaderElection } from '../app/kube-options.js';
import { loadKubeConfig } from '../kubernetes/kubeconfig.js';

const usage = `Usage: runner-fleet doctor --config fleet.yaml [--kubeconfig F] [--aws-endpoint URL]
                            [--controller-service-account NS/NAME]

Checks that a fleet can run, one line per check (ok or FAIL with the reason); exit 0 only when every check passes:
  - GitHub: the App (or token) authenticates; the App's installation grants, per scope, organization_self_hosted_runners
    write (organization) or administration write (repository) and actions read; the App and each installation
    subscribe to workflow_job; enterprise scopes use a classic token; every scope's runners can be listed (through
    HTTPS_PROXY unless NO_PROXY exempts GitHub, trusting github.caFile);
  - Kubernetes (when a scale set runs there): the controller's permissions in every namespace it uses, and each
    runner ServiceAccount: present, carrying its identity annotations, holding its container mode's rights;
  - each other provider kind the fleet uses, by its own checks; EC2: the AWS identity, each launch template (exists,
    requires IMDSv2), each subnet, and each SSM prefix writable (a probe parameter is put and deleted).

Options:
  --config F                            the fleet.yaml (required)
  --kubeconfig F                        Kubernetes credentials (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  --aws-endpoint URL                    endpoint of every AWS call of the ec2 scale sets (e.g. a local moto server);
                                        credentials from AWS_* variables or the AWS SDK's default chain
  --controller-service-account NS/NAME  check that ServiceAccount's rights (SubjectAccessReview), for an operator
                                        running doctor with their own credentials; default: the caller's own rights
  --leader-election                     include the leader-election Lease (also RUNNER_FLEET_LEADER_ELECTION=true)
  --lease-name N, --lease-namespace NS  as for start
`;

interface DoctorFlags extends FleetFlags {
  readonly controllerServiceAccount?: { namespace: string; name: string };
}

function parse(argv: string[]): DoctorFlags {
  const { flags, extra } = parseFleetArgs(argv, { 'controller-service-account': { type: 'string' } });
  const sa = extra['controller-service-account'];
  if (sa === undefined) return flags;
  const [namespace, name, ...rest] = sa.split('/');
  if (!namespace || !name || rest.length > 0) {
    throw new UsageError('--controller-service-account must be NAMESPACE/NAME');
  }
  return { ...flags, controllerServiceAccount: { namespace, name } };
}

function write(io: CommandIo, line: CheckLine | string): void {
  const text = typeof line === 'string' ? line : `${line.ok ? 'ok  ' : 'FAIL'}  ${line.text}`;
  io.stdout.write(`${text}\n`);
  if (typeof line !== 'string' && line.fix) io.stdout.write(`      fix: ${line.fix}\n`);
}

/** Lines of the Kubernetes checks and whether they all passed. */
async function kubernetesChecks(
  config: FleetConfig,
  flags: DoctorFlags,
  io: CommandIo,
): Promise<{ lines: string[]; ok: boolean }> {
  let kubeConfig;
  try {
    kubeConfig = loadKubeConfig(flags.kubeconfig);
  } catch (error) {
    return { lines: [`FAIL  Kubernetes: ${(error as Error).message}`], ok: false };
  }
  const election = leaderElectionSettings(kubeConfig, config, flags, io.env);
  const server = kubeConfig.getCurrentCluster()?.server ?? 'the cluster';
  try {
    const report = await inspectKubernetesFleet(kubeConfig, config, {
      controllerNamespace: election.namespace,
      leaderElection: election.enabled,
      leaseName: election.leaseName,
      signal: AbortSignal.timeout(60_000),
      ...(flags.controllerServiceAccount ? { controllerServiceAccount: flags.controllerServiceAccount } : {}),
    });
    const whose = flags.controllerServiceAccount
      ? `ServiceAccount ${flags.controllerServiceAccount.namespace}/${flags.controllerServiceAccount.name}`
      : 'these credentials';
    return {
      lines: [
        `ok    Kubernetes API ${server} reachable; checking the rights of ${whose}`,
        ...formatKubernetesReport(report),
      ],
      ok: report.ok,
    };
  } catch (error) {
    return { lines: [`FAIL  Kubernetes API ${server}: ${(error as Error).message}`], ok: false };
  }
}

/** The `doctor` of every provider module whose kind the fleet uses (Kubernetes has its own part above). */
async function providerChecks(
  config: FleetConfig,
  flags: DoctorFlags,
  io: CommandIo,
): Promise<{ lines: string[]; ok: boolean }> {
  const { providerModules } = await import('../providers/modules.js');
  const lines: string[] = [];
  let ok = true;
  const logger = pino({ level: 'silent' });
  for (const module of providerModules) {
    if (!('doctor' in module) || typeof module.doctor !== 'function') continue;
    const scaleSets = config.scaleSets.filter((s) => s.provider.kind === module.kind);
    if (scaleSets.length === 0) continue;
    try {
      const report = await module.doctor({
        fleet: config,
        scaleSets,
        env: io.env,
        connection: {
          ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
          ...(flags.awsEndpoint !== undefined ? { awsEndpoint: flags.awsEndpoint } : {}),
        },
        checkAccess: true,
        logger,
        signal: AbortSignal.timeout(120_000),
      });
      for (const line of report.lines) lines.push(`${line.ok ? 'ok  ' : 'FAIL'}  ${line.text}`);
      ok &&= report.ok;
    } catch (error) {
      lines.push(`FAIL  ${module.kind}: the checks could not run: ${(error as Error).message}`);
      ok = false;
    }
  }
  return { lines, ok };
}

export const command: Command = {
  summary: 'Check GitHub credentials and permissions, Kubernetes rights and AWS access for a fleet.yaml',
  usage,
  async run(argv, io) {
    const flags = parse(argv);
    const config = loadFleetConfig('doctor', flags.config, io);
    if (config === 2) return 2;
    let transport;
    try {
      transport = githubFetch(config.github, io.env);
    } catch (error) {
      io.stderr.write(`runner-fleet doctor: ${(error as Error).message}\n`);
      return 2;
    }
    const github = await githubChecks(config, {
      logger: pino({ level: 'silent' }),
      signal: AbortSignal.timeout(120_000),
      fetch: transport.fetch,
    }).finally(() => transport.close());
    for (const line of github) write(io, line);
    let ok = github.every((l) => l.ok);
    if (usesKubernetes(config, wantsLeaderElection(flags, io.env))) {
      const kube = await kubernetesChecks(config, flags, io);
      for (const line of kube.lines) write(io, line);
      ok &&= kube.ok;
    }
    const providers = await providerChecks(config, flags, io);
    for (const line of providers.lines) write(io, line);
    ok &&= providers.ok;
    write(io, ok ? 'doctor: all checks passed' : 'doctor: some checks FAILED');
    return ok ? 0 : 1;
  },
};
