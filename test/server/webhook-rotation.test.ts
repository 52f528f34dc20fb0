/**
 * Webhook secret rotation: `webhook.secret` as a list in fleet.yaml. A delivery signed with any listed secret is
 * accepted, any other is refused with 401; the secrets never reach the log. Deliveries go over real sockets.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { formatProblem, parseConfig } from '../../src/config/index.js';
import type { FleetConfig } from '../../src/core/fleet-config.js';
import type { FleetServer } from '../../src/server/server.js';
import { createServer } from '../../src/server/server.js';
import { configSecrets, createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { MemorySink, captureLogs, leakyReadModel, signedHeaders, workflowJobPayload } from './helpers.js';

const OLD = 'old-webhook-secret-3b1f9c0e77d2';
const NEW = 'new-webhook-secret-a84e02c6519f';
const OTHER = 'someone-elses-secret-55e1d0a3c9';

function load(text: string, env: Record<string, string>) {
  return parseConfig(text, 'fleet.yaml', { env, readFile: () => '' });
}

const fleetYaml = (secret: string) => `
github: { auth: { token: ghp_example0123456789 } }
webhook:
  secret: ${secret}
scaleSets:
  - { name: a, scope: { org: octo }, labels: [linux], max: 1, provider: { kind: sim } }
`;

let server: FleetServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('webhook secret rotation', () => {
  it('accepts deliveries signed with any listed secret and refuses any other with 401', async () => {
    const result = load(fleetYaml('["${env:NEW_SECRET}", "${env:OLD_SECRET}"]'), {
      NEW_SECRET: NEW,
      OLD_SECRET: OLD,
    });
    expect(result.ok ? [] : result.problems.map(formatProblem)).toEqual([]);
    const config = (result as { config: FleetConfig }).config;
    expect(config.webhook.secret).toEqual([NEW, OLD]);

    const logs = captureLogs();
    const sink = new MemorySink();
    server = await createServer({
      config,
      sink,
      readModel: leakyReadModel(),
      isReady: () => true,
      metrics: createMetrics(),
      logger: createLogger({ level: 'trace', destination: logs.stream, knownSecrets: configSecrets(config) }),
    });
    const url = await server.listen();
    const deliver = async (secret: string, jobId: number) => {
      const body = JSON.stringify(workflowJobPayload({ jobId }));
      const headers = await signedHeaders(body, 'workflow_job', `delivery-${jobId}`, secret);
      const res = await fetch(`${url}/webhook`, { method: 'POST', body, headers });
      await res.body?.cancel();
      return res.status;
    };
    expect(await deliver(OLD, 1)).toBe(202);
    expect(await deliver(NEW, 2)).toBe(202);
    expect(await deliver(OTHER, 3)).toBe(401);
    expect(sink.events.map((e) => e.job.id)).toEqual([1, 2]);
    for (const secret of [OLD, NEW]) expect(logs.text()).not.toContain(secret);
  });

  it('one secret still works as a plain string; a bad list is refused with its position', () => {
    const single = load(fleetYaml('"${env:NEW_SECRET}"'), { NEW_SECRET: NEW });
    expect(single.ok && single.config.webhook.secret).toBe(NEW);

    const problems = (text: string, env: Record<string, string> = {}) => {
      const r = load(fleetYaml(text), env);
      return r.ok ? [] : r.problems.map(formatProblem);
    };
    expect(problems('[]')).toEqual(['fleet.yaml:4:11 webhook.secret: needs at least one secret']);
    expect(problems('["${env:NEW_SECRET}", ""]', { NEW_SECRET: NEW })).toEqual([
      'fleet.yaml:4:33 webhook.secret[1]: must not be empty',
    ]);
    expect(problems('[a1234567890123456, b1234567890123456, c1234567890123456, d1234567890123456]')).toEqual([
      'fleet.yaml:4:11 webhook.secret: at most 3 secrets (keep only the ones in use during a rotation)',
    ]);
    // A short secret in the list is warned about where it stands.
    const short = load(fleetYaml('["${env:NEW_SECRET}", short]'), { NEW_SECRET: NEW });
    expect(short.ok && short.warnings.map(formatProblem)).toEqual([
      'fleet.yaml:4:33 webhook.secret[1]: is 5 characters long; use at least 16 random characters (e.g. openssl rand -hex 32)',
    ]);
  });
});
