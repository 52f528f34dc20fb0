import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { providerKinds, providerSchema, providerSchemas } from './schemas.js';

describe('provider schemas', () => {
  it('dispatches on exactly the kinds of the map', () => {
    const options = providerSchema.options.map((option) => option.shape.kind.value);
    expect(options).toEqual(providerKinds);
    expect(providerKinds).toEqual(['process', 'sim', 'kubernetes', 'ec2']);
  });

  // Provider factories validate the already-parsed block again, so parsing must be idempotent.
  it.each([
    ['process', '{ kind: process, command: run.sh, args: [-x], env: { A: b }, stopGracePeriod: 3s }'],
    ['sim', '{ kind: sim, bootDelay: 1s }'],
    [
      'kubernetes',
      '{ kind: kubernetes, namespace: ci, containerMode: dind, serviceAccount: { name: sa }, workVolume: {}, ' +
        'template: { spec: { containers: [{ name: runner }], tolerations: [{ operator: Exists }] } } }',
    ],
    [
      'ec2',
      '{ kind: ec2, region: eu-west-1, launchTemplate: { id: lt-0abc, version: 4 }, capacity: spot, ' +
        'instanceTypes: [m7g.large, m6g.large], subnetIds: [subnet-0a, subnet-0b], ' +
        'onDemandFailover: [InsufficientInstanceCapacity], ssm: { pathPrefix: /ci/runners }, tags: { team: ci } }',
    ],
  ])('%s: a parsed block parses to itself', (kind, block) => {
    const text = [
      'github: { auth: { token: t } }',
      'webhook: { secret: s }',
      'scaleSets:',
      `  - { name: a, scope: { org: o }, labels: [x], max: 1, provider: ${block} }`,
    ].join('\n');
    const result = parseConfig(text, 'f.yaml', { env: {} });
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    const parsed = result.config.scaleSets[0]!.provider;
    expect(parsed.kind).toBe(kind);
    expect(providerSchemas[kind as keyof typeof providerSchemas].parse(parsed)).toEqual(parsed);
  });
});
