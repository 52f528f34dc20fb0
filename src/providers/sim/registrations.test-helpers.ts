/**
 * Real registrations from a running GitHub simulator, for the provider contract suites whose runners are emulated
 * runners (the sim provider, and the process provider running `runner-fleet emulate-runner`). Each outcome is
 * produced the way it happens on GitHub: a runner that takes a job and exits 0 (ephemeral), a runner whose
 * registration was deleted before it started (exit 1), or one that waits for a job until it is deleted.
 */
import { randomBytes } from 'node:crypto';
import type { ContractSpecOptions } from '../../../test/support/provider-contract.js';
import type { InstanceSpec } from '../provider.js';
import type { Simulator } from '../../sim/github/index.js';

const ORG = 'octo-org';

async function gh(sim: Simulator, method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${sim.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `token ${sim.token}`,
      accept: 'application/vnd.github+json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status}`);
  return response.status === 204 ? undefined : response.json();
}

export interface SimSpecMaker {
  (name: string, options?: ContractSpecOptions): Promise<InstanceSpec>;
}

export function simSpecMaker(sim: Simulator, fleet: string, scaleSet: string): SimSpecMaker {
  return async (name, options = {}) => {
    // A label of its own, so the job queued for this runner can go to no other.
    const label = `l-${name}`;
    const outcome = options.outcome ?? 'hold';
    if (options.mode === 'token') {
      const token =
        outcome === 'failure'
          ? `bad-token-${randomBytes(16).toString('hex')}`
          : ((await gh(sim, 'POST', `/orgs/${ORG}/actions/runners/registration-token`)) as { token: string })
              .token;
      if (outcome === 'success')
        sim.createJobs({ owner: ORG, repo: 'app', labels: [label], durationMs: 100 });
      return {
        name,
        fleet,
        scaleSet,
        registration: {
          mode: 'token',
          url: sim.webUrl({ kind: 'org', org: ORG }),
          token,
          labels: [label],
          runnerGroup: 'Default',
          ephemeral: true,
        },
      };
    }
    const jit = (await gh(sim, 'POST', `/orgs/${ORG}/actions/runners/generate-jitconfig`, {
      name,
      runner_group_id: 1,
      labels: [label],
    })) as { runner: { id: number }; encoded_jit_config: string };
    if (outcome === 'failure') await gh(sim, 'DELETE', `/orgs/${ORG}/actions/runners/${jit.runner.id}`);
    if (outcome === 'success') sim.createJobs({ owner: ORG, repo: 'app', labels: [label], durationMs: 100 });
    return { name, fleet, scaleSet, registration: { mode: 'jit', jitConfig: jit.encoded_jit_config } };
  };
}
