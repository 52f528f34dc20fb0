/**
 * The `ec2` provider block: each runner is an EC2 instance. The JIT config reaches the instance through an SSM
 * SecureString readable only by that instance. First cut; the provider refines it.
 */
import { z } from 'zod';
import { httpUrl, nonEmpty, whenObject } from '../../config/formats.js';

const launchTemplate = z
  .strictObject({
    name: nonEmpty().optional().describe('Launch template name.'),
    id: z
      .string()
      .regex(/^lt-[0-9a-f]+$/, { error: 'must look like lt-0123456789abcdef0' })
      .optional()
      .describe('Launch template id.'),
    version: z
      .union([z.string().regex(/^(\$Latest|\$Default|\d+)$/), z.number().int().min(1).max(2_147_483_647)], {
        error: 'must be a version number, $Latest or $Default',
      })
      .transform(String)
      .optional()
      .describe('Version: a number, `$Latest` or `$Default` (the default).'),
  })
  .superRefine((value, ctx) => {
    if ((value.name === undefined) === (value.id === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of `name` or `id`' });
    }
  }, whenObject);

export const ec2ProviderSchema = z
  .strictObject({
    kind: z.literal('ec2').describe('Selects the ec2 provider.'),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, { error: 'must be an AWS region such as eu-west-1' })
      .describe('AWS region.'),
    launchTemplate: launchTemplate.optional().describe('Launch template to start instances from.'),
    imageId: z
      .string()
      .regex(/^ami-[0-9a-f]+$/, { error: 'must look like ami-0123456789abcdef0' })
      .optional()
      .describe('AMI; overrides the launch template’s.'),
    instanceType: nonEmpty()
      .optional()
      .describe('Instance type, e.g. m7g.large; overrides the launch template’s.'),
    subnetIds: z
      .array(z.string().regex(/^subnet-[0-9a-f]+$/, { error: 'must look like subnet-0123456789abcdef0' }))
      .min(1, { error: 'needs at least one subnet' })
      .max(64, { error: 'at most 64 subnets' })
      .optional()
      .describe('Subnets to spread instances over.'),
    securityGroupIds: z
      .array(z.string().regex(/^sg-[0-9a-f]+$/, { error: 'must look like sg-0123456789abcdef0' }))
      .max(16, { error: 'at most 16 security groups' })
      .optional()
      .describe('Security groups of the instances.'),
    instanceProfile: nonEmpty()
      .optional()
      .describe('IAM instance profile (name or ARN); it must allow reading the runner’s SSM parameter.'),
    spot: z.boolean().default(false).describe('Request spot capacity.'),
    userDataTemplate: z
      .string()
      .optional()
      .describe('User data template that starts the runner; runner-fleet provides a default.'),
    endpoint: httpUrl().optional().describe('AWS endpoint override (e.g. a local moto server in tests).'),
  })
  .superRefine((value, ctx) => {
    if (value.launchTemplate === undefined && value.imageId === undefined) {
      ctx.addIssue({ code: 'custom', message: 'give `launchTemplate` or `imageId` (or both)' });
    }
  }, whenObject)
  .describe('Runs each runner on an EC2 instance (best effort; refined with the provider).');

export type Ec2ProviderConfig = z.output<typeof ec2ProviderSchema>;
