/**
 * The helm CLI for chart tests: built from the Go module proxy by scripts/install-helm.sh and cached outside the
 * repository. Tests never build it (that is install-peers' job); without it they say so loudly, and under CI=true
 * its absence is a failure.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { reportSkip } from '../support/skips.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
export const CHART_DIR = fileURLToPath(new URL('../../deploy/helm/runner-fleet', import.meta.url));

export function helmBinary(): string | undefined {
  const result = spawnSync('bash', [`${repo}scripts/install-helm.sh`, '--check'], { encoding: 'utf8' });
  if (result.status !== 0) return undefined;
  return result.stdout.trim().split('\n').pop();
}

/** For describe.skipIf(!requireHelm(...)): loud skip on a developer machine, failure under CI=true. */
export function requireHelm(suite: string): boolean {
  if (helmBinary()) return true;
  return reportSkip(suite, 'helm is not built', 'scripts/install-helm.sh (needs Go 1.26)');
}

export interface HelmResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function helm(args: readonly string[], input?: string): HelmResult {
  const bin = helmBinary();
  if (!bin) throw new Error('helm is not built');
  const r = spawnSync(bin, args, {
    encoding: 'utf8',
    input,
    env: { ...process.env, HELM_CACHE_HOME: '/tmp/rf-helm-cache' },
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` of the chart with values given as an object (passed as a values file on stdin). */
export function helmTemplate(values: unknown, namespace = 'runner-fleet', release = 'rf'): string {
  const r = helm(
    ['template', release, CHART_DIR, '--namespace', namespace, '--values', '-'],
    JSON.stringify(values),
  );
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return r.stdout;
}
