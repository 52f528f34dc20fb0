import { describe, expect, it } from 'vitest';
import { formatPath, formatProblem } from './problem.js';

describe('formatPath', () => {
  it('uses dots for keys, brackets for indices and quoted brackets for other keys', () => {
    expect(formatPath(['scaleSets', 1, 'max'])).toBe('scaleSets[1].max');
    expect(formatPath(['scaleSets', 0, 'provider', 'podLabels', 'app.kubernetes.io/name'])).toBe(
      'scaleSets[0].provider.podLabels["app.kubernetes.io/name"]',
    );
    expect(formatPath(['a-b', 'c_d'])).toBe('a-b.c_d');
    expect(formatPath([])).toBe('');
  });
});

describe('formatProblem', () => {
  it('prints file:line:col path: message', () => {
    expect(
      formatProblem({ file: 'f.yaml', line: 3, col: 7, path: 'scaleSets[0].max', message: 'required' }),
    ).toBe('f.yaml:3:7 scaleSets[0].max: required');
  });

  it('leaves out an empty path and a zero position', () => {
    expect(formatProblem({ file: 'f.yaml', line: 2, col: 1, path: '', message: 'bad YAML' })).toBe(
      'f.yaml:2:1: bad YAML',
    );
    expect(formatProblem({ file: 'f.yaml', line: 0, col: 0, path: '', message: 'cannot read' })).toBe(
      'f.yaml: cannot read',
    );
  });
});
