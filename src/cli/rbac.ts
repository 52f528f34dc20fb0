/**
 * `runner-fleet rbac --config F`: prints the Kubernetes RBAC a fleet needs (the controller's ServiceAccount, its
 * Role and RoleBinding in every namespace it uses, the container-hooks Role where kubernetes mode runs), derived from
 * the same rule data the controller checks at start. Secret references in the config are not resolved: RBAC does not
 * depend on them, and an operator rendering manifests need not hold the fleet's secrets.
 */
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { configOrProblems } from './config-without-secrets.js';
import { controllerRbacObjects, toYamlDocuments } from '../kubernetes/rbac-manifests.js';
import { leaseNameFor } from '../kubernetes/rbac-rules.js';
import { controllerNeeds } from '../providers/kubernetes/rbac-needs.js';

const usage = `Usage: runner-fleet rbac --config <fleet.yaml> [options]

Prints the Kubernetes manifests (kubectl apply -f -) that give runner-fleet exactly the rights it needs for this
fleet: the controller's ServiceAccount, a Role and RoleBinding in each namespace it uses, and the
runner-fleet-container-hooks Role in namespaces with kubernetes container mode.

Options:
  -c, --config <file>          the fleet.yaml (required; secret references are not resolved)
  --namespace <ns>             namespace the controller runs in (default: runner-fleet)
  --service-account <name>     the controller's ServiceAccount (default: runner-fleet)
  --role-name <name>           name of the controller's Roles and RoleBindings (default: runner-fleet-controller)
  --leader-election            also grant the leader-election Lease (for more than one replica)
  --lease-name <name>          Lease name (default: <fleet name>-leader)
  --no-service-account         do not print the ServiceAccount
  -h, --help                   show this help
`;

export interface RbacArgs {
  readonly config: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly roleName: string;
  readonly leaderElection: boolean;
  readonly leaseName?: string;
  readonly includeServiceAccount: boolean;
}

export function parseRbacArgs(argv: readonly string[]): RbacArgs {
  const values: Record<string, string> = {};
  const flags = new Set<string>();
  const withValue = new Set(['--config', '--namespace', '--service-account', '--role-name', '--lease-name']);
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i] as string;
    if (arg === '-c') arg = '--config';
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (withValue.has(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '') throw new UsageError(`${name} needs a value`);
      values[name] = value;
    } else if (name === '--leader-election' || name === '--no-service-account') {
      flags.add(name);
    } else {
      throw new UsageError(`unexpected argument '${arg}'`);
    }
  }
  if (!values['--config']) throw new UsageError('--config <fleet.yaml> is required');
  return {
    config: values['--config'],
    namespace: values['--namespace'] ?? 'runner-fleet',
    serviceAccount: values['--service-account'] ?? 'runner-fleet',
    roleName: values['--role-name'] ?? 'runner-fleet-controller',
    leaderElection: flags.has('--leader-election'),
    ...(values['--lease-name'] ? { leaseName: values['--lease-name'] } : {}),
    includeServiceAccount: !flags.has('--no-service-account'),
  };
}

export const command: Command = {
  summary: 'Print the Kubernetes RBAC manifests a fleet needs',
  usage,
  async run(argv, io) {
    const args = parseRbacArgs(argv);
    const config = configOrProblems(args.config, io.env, io.stderr);
    if (config === null) return 2;
    const needs = controllerNeeds(config, {
      controllerNamespace: args.namespace,
      leaderElection: args.leaderElection,
    });
    if (needs.length === 0) {
      io.stderr.write(
        'runner-fleet rbac: no kubernetes scale sets and no leader election: nothing to grant\n',
      );
      return 0;
    }
    const objects = controllerRbacObjects(
      needs,
      {
        controllerServiceAccount: { namespace: args.namespace, name: args.serviceAccount },
        controllerRole: args.roleName,
        leaseName: args.leaseName ?? leaseNameFor(config.name),
      },
      { includeServiceAccount: args.includeServiceAccount },
    );
    io.stdout.write(toYamlDocuments(objects));
    return 0;
  },
};
