/**
 * A fleet against the GitHub simulator, as the end-to-end suites run it (in-process and on the Kubernetes test
 * control plane): the simulator's settings, the credentials fleet.yaml reads, and what the simulator recorded of the
 * runners it registered and the jobs they ran.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRunnerOf } from '../../src/core/names.js';
import { startSimulator } from '../../src/sim/github/index.js';
import type { Simulator, SimulatorOptions } from '../../src/sim/github/index.js';

/** A simulator that records every REST exchange: the secrets it issued and the runners it registered show there. */
export function startFleetSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  return startSimulator({
    orgs: ['octo-org'],
    recordExchanges: true,
    // A lost runner goes offline quickly, so its job fails fast instead of hanging a test.
    runnerOfflineAfterMs: 3000,
    // The bursts here create runners faster than GitHub's 180 a minute; that limit is not the subject of these tests.
    secondaryLimitPerMinute: 10_000,
    ...options,
  });
}

/**
 * Writes the App key and the webhook secret into `dir` (0600) and returns fleet.yaml's `github` and `webhook`
 * sections, which read them through `${file:...}` (so fleet.yaml must be written into `dir` too).
 */
export function simulatorCredentials(sim: Simulator, dir: string) {
  writeFileSync(join(dir, 'app.pem'), sim.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'webhook-secret'), sim.webhookSecret, { mode: 0o600 });
  return {
    github: {
      url: sim.baseUrl,
      apiUrl: sim.apiUrl,
      auth: { app: { id: sim.appId, privateKey: '${file:./app.pem}' } },
    },
    webhook: { secret: '${file:./webhook-secret}' },
  };
}

/** Runner names of the JIT registrations the simulator created (generate-jitconfig answered 201), per scale set. */
export function jitRegistrations(sim: Simulator, scaleSets: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>(scaleSets.map((s) => [s, []]));
  for (const x of sim.recordedExchanges()) {
    if (x.status !== 201 || !x.template?.endsWith('/generate-jitconfig')) continue;
    const name = (JSON.parse(x.requestBody ?? '{}') as { name?: string }).name ?? '';
    const set = scaleSets.find((s) => isRunnerOf(s, name));
    if (set !== undefined) out.get(set)!.push(name);
  }
  return out;
}

/** Names of the runners that ran (completed) jobs, per scale set. */
export function runnersThatRan(sim: Simulator, scaleSets: readonly string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>(scaleSets.map((s) => [s, new Set()]));
  for (const j of sim.jobs('completed')) {
    const set = j.runnerName === null ? undefined : scaleSets.find((s) => isRunnerOf(s, j.runnerName!));
    if (set !== undefined) out.get(set)!.add(j.runnerName!);
  }
  return out;
}
