import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatProblem, loadConfig } from '../../src/config/index.js';

const example = fileURLToPath(new URL('../../examples/fleet.yaml', import.meta.url));

describe('examples/fleet.yaml', () => {
  it('validates, with a scale set for each of the process, sim and kubernetes providers', () => {
    const result = loadConfig(example, {
      env: { GITHUB_TOKEN: 'ghp_example', WEBHOOK_SECRET: 'example-secret' },
    });
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    const kinds = result.config.scaleSets.map((set) => set.provider.kind);
    expect(kinds).toEqual(['process', 'sim', 'kubernetes']);
    expect(result.config.scaleSets.find((set) => set.identity)?.identity).toEqual({
      aws: { roleArn: 'arn:aws:iam::123456789012:role/ci-runner' },
    });
  });

  it('names the environment variables it needs when they are missing', () => {
    const result = loadConfig(example, { env: {} });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((problem) => problem.message)).toEqual([
      'environment variable GITHUB_TOKEN is not set',
      'environment variable WEBHOOK_SECRET is not set',
    ]);
  });
});
