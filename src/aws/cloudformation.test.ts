import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { spliceGenerated } from '../kubernetes/rbac-render.js';
import {
  CFN_PARAMETER_MARKS,
  CFN_TARGET,
  cloudFormationTemplate,
  renderCfnParameterTable,
  renderCloudFormation,
  templateStatements,
} from './cloudformation.js';
import { IAM_MARKS, markdownCell, renderIamTables } from './iam-render.js';
import { API_CALLS, POLICY_RULES, SID } from './policies.js';
import { renderUserData } from './user-data.js';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

type Resources = Record<string, { Type: string; Condition?: string; Properties: Record<string, unknown> }>;
const template = cloudFormationTemplate() as { Resources: Resources; Parameters: Record<string, unknown> };

describe('generated AWS files', () => {
  it('deploy/aws/runner-fleet.yaml matches the data (regenerate: npm run gen:aws)', () => {
    expect(read('deploy/aws/runner-fleet.yaml')).toBe(renderCloudFormation());
  });

  it('docs/aws.md tables match the data (regenerate: npm run gen:aws)', () => {
    const doc = read('docs/aws.md');
    expect(doc).toBe(spliceGenerated(doc, renderIamTables(), IAM_MARKS));
    expect(doc).toBe(spliceGenerated(doc, renderCfnParameterTable(), CFN_PARAMETER_MARKS));
  });

  it('the IAM tables name every statement and call with its reason', () => {
    const tables = renderIamTables();
    for (const rule of POLICY_RULES) {
      expect(tables).toContain(`\`${rule.sid}\``);
      expect(tables).toContain(markdownCell(rule.why));
    }
    for (const call of API_CALLS) expect(tables).toContain(markdownCell(call.why));
  });

  it('the YAML is the template object, with dates as strings', () => {
    const text = renderCloudFormation();
    expect(parse(text)).toEqual(cloudFormationTemplate());
    expect(text).toContain("AWSTemplateFormatVersion: '2010-09-09'");
    expect(text).not.toMatch(/[&*]a\d/); // no YAML anchors or aliases
  });
});

describe('the template', () => {
  it('holds every statement of both principals except those a template parameter cannot express', () => {
    const sids = (principal: 'controller' | 'instance') =>
      [...templateStatements(principal).values()]
        .flat()
        .map((s) => s.Sid)
        .sort();
    const aliasOnly = new Set<string>([SID.encryptByAlias, SID.decryptByAlias]);
    for (const principal of ['controller', 'instance'] as const) {
      expect(sids(principal)).toEqual(
        POLICY_RULES.filter((r) => r.principal === principal && !aliasOnly.has(r.sid))
          .map((r) => r.sid)
          .sort(),
      );
    }
    expect(
      templateStatements('controller')
        .get('SpotAllowed')
        ?.map((s) => s.Sid),
    ).toEqual([SID.launchSpot]);
    expect(
      templateStatements('controller')
        .get('HasKmsKey')
        ?.map((s) => s.Sid),
    ).toEqual([SID.encrypt]);
    expect(
      templateStatements('instance')
        .get('HasKmsKey')
        ?.map((s) => s.Sid),
    ).toEqual([SID.decrypt]);
  });

  it('writes references as Fn::Sub, Ref or GetAtt and leaves IAM policy variables alone', () => {
    const policies = JSON.stringify(template.Resources.ControllerPolicy?.Properties);
    expect(policies).toContain(
      '{"Fn::Sub":"arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"}',
    );
    expect(policies).toContain('"aws:RequestTag/runner-fleet:fleet":{"Ref":"FleetName"}');
    expect(policies).toContain('{"Fn::GetAtt":["InstanceRole","Arn"]}');
    expect(policies).toContain('"ec2:SubnetID":{"Ref":"SubnetIds"}');
    const instance = JSON.stringify(template.Resources.InstancePolicy?.Properties);
    expect(instance).toContain('"aws:ResourceTag/runner-fleet:instance-arn":"${ec2:SourceInstanceARN}"');
    expect(CFN_TARGET.fleet).toBe('${FleetName}');
  });

  it('the launch template requires IMDSv2, terminates on shutdown and carries the default user data', () => {
    const data = template.Resources.LaunchTemplate?.Properties.LaunchTemplateData as Record<string, unknown>;
    expect(data.MetadataOptions).toEqual({
      HttpEndpoint: 'enabled',
      HttpTokens: 'required',
      HttpPutResponseHopLimit: 1,
      InstanceMetadataTags: 'disabled',
    });
    expect(data.InstanceInitiatedShutdownBehavior).toBe('terminate');
    const join = (data.UserData as { 'Fn::Base64': { 'Fn::Join': [string, [string, unknown, string]] } })[
      'Fn::Base64'
    ]['Fn::Join'];
    const [before, , after] = join[1];
    expect(`${before}/runner-fleet/acme${after}`).toBe(renderUserData({ ssmPrefix: '/runner-fleet/acme' }));
  });

  it('conditional policies exist only under their condition and attach themselves to their role', () => {
    const policies = Object.entries(template.Resources).filter(
      ([, r]) => r.Type === 'AWS::IAM::ManagedPolicy',
    );
    expect(policies.map(([id, r]) => [id, r.Condition, r.Properties.Roles])).toEqual([
      ['ControllerPolicy', undefined, [{ Ref: 'ControllerRole' }]],
      ['ControllerSpotPolicy', 'SpotAllowed', [{ Ref: 'ControllerRole' }]],
      ['ControllerKmsPolicy', 'HasKmsKey', [{ Ref: 'ControllerRole' }]],
      ['InstancePolicy', undefined, [{ Ref: 'InstanceRole' }]],
      ['InstanceKmsPolicy', 'HasKmsKey', [{ Ref: 'InstanceRole' }]],
    ]);
  });
});
