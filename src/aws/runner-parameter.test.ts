import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RunnerParameter } from './runner-parameter.js';
import { decodeRunnerParameter, encodeRunnerParameter, runnerParameterName } from './runner-parameter.js';

describe('runner parameter', () => {
  it('round-trips both modes, whatever the label and group text', () => {
    const label = fc.string({ minLength: 1 }).filter((s) => !s.includes(','));
    const parameter: fc.Arbitrary<RunnerParameter> = fc.oneof(
      fc.record({ mode: fc.constant('jit' as const), jitConfig: fc.base64String({ minLength: 4 }) }),
      fc.record({
        mode: fc.constant('token' as const),
        url: fc.webUrl(),
        token: fc.string({ minLength: 1 }),
        name: fc.string({ minLength: 1 }),
        labels: fc.array(label, { minLength: 1, maxLength: 5 }),
        runnerGroup: fc.string({ minLength: 1 }),
        ephemeral: fc.boolean(),
      }),
    );
    fc.assert(
      fc.property(parameter, (p) => {
        expect(decodeRunnerParameter(encodeRunnerParameter(p))).toEqual(p);
      }),
    );
  });

  it('is key=base64 lines only, so a shell reads it without eval', () => {
    const text = encodeRunnerParameter({
      mode: 'token',
      url: 'https://github.com/octo-org',
      token: 'AABBCC',
      name: 'linux-ab12',
      labels: ['linux', 'x64; rm -rf /'],
      runnerGroup: 'Default',
      ephemeral: false,
    });
    for (const line of text.trimEnd().split('\n')) expect(line).toMatch(/^[a-z]+=[A-Za-z0-9+/=]*$/);
  });

  it('names a missing field or an unknown version without quoting the value', () => {
    expect(() => decodeRunnerParameter('version=MQ==\nmode=aml0\n')).toThrow('missing jitconfig');
    expect(() => decodeRunnerParameter('version=Mg==\nmode=aml0\njitconfig=c2VjcmV0\n')).toThrow(
      'unsupported version "2"',
    );
  });

  it('joins prefix and instance id with one slash', () => {
    expect(runnerParameterName('/runner-fleet/prod/', 'i-0abc')).toBe('/runner-fleet/prod/i-0abc');
  });
});
