/**
 * The `ec2` provider block: each runner is an EC2 instance. The JIT config (or registration token) reaches the
 * instance through an SSM SecureString `<ssm.pathPrefix>/<instance id>` that only that instance may read; user data and
 * tags carry no secret. See docs/ec2-provider.md.
 *
 * Launch paths, decided by the block alone (see `launchPlan` in launch.ts):
 * - RunInstances: one instance type (or the template's) and at most one subnet, from `imageId` or a launch template.
 * - CreateFleet (type `instant`): several instance types or subnets; overrides = types x subnets. CreateFleet launches
 *   only from a launch template, so those need `launchTemplate`.
 *
 * Parsing is idempotent (the registry parses blocks the config loader already parsed): defaults that depend on other
 * fields (allocation strategy, failover codes, parameter prefix) stay absent here and are resolved by the provider.
 */
import { z } from 'zod';
import { duration } from '../../config/duration.js';
import { httpUrl, whenObject } from '../../config/formats.js';
import { UserDataError, renderUserData } from '../../aws/user-data.js';
import { userDataSettingsOf } from './user-data.js';

/** Spot error codes after which the same create is retried on-demand, when `onDemandFailover` is not given. */
export const DEFAULT_ON_DEMAND_FAILOVER_CODES = [
  'InsufficientInstanceCapacity',
  'MaxSpotInstanceCountExceeded',
  'UnfulfillableCapacity',
  'SpotMaxPriceTooLow',
] as const;

export const SPOT_ALLOCATION_STRATEGIES = [
  'price-capacity-optimized',
  'capacity-optimized',
  'lowest-price',
] as const;
export const ON_DEMAND_ALLOCATION_STRATEGIES = ['lowest-price', 'prioritized'] as const;

/** Tag keys runner-fleet sets itself (ownership, Name): a user tag may not use them. */
const RESERVED_TAG_PREFIX = 'runner-fleet:';
/** Tags runner-fleet puts on every instance and parameter; AWS allows 50 per resource. */
const OWN_TAGS = 5;
const MAX_TAGS = 50;

const launchTemplate = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-zA-Z0-9()./_-]{3,128}$/, {
        error: 'must be a launch template name: 3 to 128 of letters, digits and ( ) . / _ -',
      })
      .optional()
      .describe('Launch template name.'),
    id: z
      .string()
      .regex(/^lt-[0-9a-f]+$/, { error: 'must look like lt-0123456789abcdef0' })
      .optional()
      .describe('Launch template id.'),
    version: z
      .union(
        [z.string().regex(/^(\$Latest|\$Default|[1-9]\d{0,9})$/), z.number().int().min(1).max(2_147_483_647)],
        {
          error: 'must be a version number, $Latest or $Default',
        },
      )
      .transform(String)
      .optional()
      .describe('Version: a number, `$Latest` or `$Default` (the default).'),
  })
  .superRefine((value, ctx) => {
    if ((value.name === undefined) === (value.id === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of `name` or `id`' });
    }
  }, whenObject);

const instanceProfile = z
  .string()
  .regex(/^(arn:aws[a-z-]*:iam::\d{12}:instance-profile\/[\w+=,.@/-]{1,128}|[\w+=,.@-]{1,128})$/, {
    error:
      'must be an instance profile name (letters, digits and _+=,.@-) or ARN (arn:aws:iam::<account>:instance-profile/<name>)',
  });

const ssm = z
  .strictObject({
    pathPrefix: z
      .string()
      .regex(/^(\/[A-Za-z0-9_.-]+)+$/, {
        error:
          'must be an SSM path such as /runner-fleet/ci: /-separated segments of letters, digits and _.-',
      })
      .refine((value) => !/^\/(aws|ssm)(\/|$)/i.test(value), {
        error: 'must not start with /aws or /ssm (reserved by AWS)',
      })
      .refine((value) => value.split('/').length - 1 <= 14, {
        error: 'at most 14 levels: the instance id adds the 15th, the most SSM allows',
      })
      .optional()
      .describe(
        'Path under which each instance’s parameter `<pathPrefix>/<instance id>` is written. Default ' +
          '`/runner-fleet/<fleet name>`. The instance profile must allow reading and deleting it.',
      ),
    kmsKeyId: z
      .string()
      .regex(
        /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[\w/+=,.@-]+|alias\/[\w/+=,.@-]+|[\w-]{1,128})$/,
        {
          error: 'must be a KMS key id, key ARN, alias name (alias/...) or alias ARN',
        },
      )
      .optional()
      .describe(
        'KMS key that encrypts the parameters. Default: the account’s `alias/aws/ssm`. The instance profile ' +
          'needs kms:Decrypt on it.',
      ),
  })
  .describe('Where the runner parameters live.');

const tagKey = z
  .string()
  .min(1, { error: 'a tag key must not be empty' })
  .max(128, { error: 'a tag key is at most 128 characters' })
  .refine((key) => !key.toLowerCase().startsWith('aws:'), {
    error: 'tag keys starting with aws: are reserved',
  })
  .refine((key) => !key.startsWith(RESERVED_TAG_PREFIX) && key !== 'Name', {
    error: `runner-fleet sets this tag itself (Name and ${RESERVED_TAG_PREFIX}*)`,
  });

const tags = z
  .record(
    tagKey,
    z
      .string({ error: 'expected a string value (quote numbers and booleans)' })
      .max(256, { error: 'a tag value is at most 256 characters' }),
  )
  .refine((value) => Object.keys(value).length <= MAX_TAGS - OWN_TAGS, {
    error: `at most ${MAX_TAGS - OWN_TAGS} tags (AWS allows ${MAX_TAGS}; runner-fleet sets ${OWN_TAGS})`,
  })
  .meta({ docType: 'map of string' });

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const absolutePath = (what: string) =>
  z
    .string()
    .max(4096, { error: `${what} is at most 4096 characters` })
    .refine((value) => value.startsWith('/'), { error: `${what} must be an absolute path (start with /)` })
    .refine((value) => !CONTROL.test(value), {
      error: `${what} must not contain control characters (newline, tab, ...)`,
    });

/**
 * Settings of the start script (src/aws/start-script/runner-start.sh) for `imageId` launches: the provider hands them
 * to renderUserData (src/aws/user-data.ts, through user-data.ts here), whose RUNNER_FLEET_* variables they become. With
 * a launch template the template's own user data is used. Nothing here is secret, and nothing secret may go here: the
 * registration reaches the instance as its SSM parameter, never as user data.
 */
export const userDataSettingsSchema = z
  .strictObject({
    runnerDir: absolutePath('runnerDir')
      .optional()
      .describe(
        'Where actions/runner is installed on the image (run.sh, config.sh). Default `/opt/actions-runner`.',
      ),
    runAs: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, {
        error:
          'must be a Linux user name: 1 to 32 of lower case letters, digits, _ and -, not starting with a digit',
      })
      .optional()
      .describe(
        'User the runner runs as (it must exist on the image and own `runnerDir`). Default: root, the user of the ' +
          'user data.',
      ),
    hooks: z
      .strictObject({
        jobStarted: absolutePath('hooks.jobStarted')
          .optional()
          .describe(
            'Script run before each job (ACTIONS_RUNNER_HOOK_JOB_STARTED): an absolute path on the image.',
          ),
        jobCompleted: absolutePath('hooks.jobCompleted')
          .optional()
          .describe(
            'Script run after each job (ACTIONS_RUNNER_HOOK_JOB_COMPLETED): an absolute path on the image.',
          ),
      })
      .optional()
      .describe(
        'actions/runner job hooks; the start script refuses to start a runner whose hook file is missing.',
      ),
    preRunnerScript: z
      .string()
      .min(1, { error: 'must not be empty; leave the field out instead' })
      .max(8192, {
        error: 'is at most 8192 characters (user data holds 16 KB in all; bake larger setups into the image)',
      })
      .refine((value) => !value.includes('\u0000'), { error: 'must not contain NUL characters' })
      .refine((value) => !value.split(/\r?\n/).includes('RUNNER_FLEET_PRE_RUNNER_EOF'), {
        error: 'must not contain a line RUNNER_FLEET_PRE_RUNNER_EOF (it ends the embedded script)',
      })
      .optional()
      .describe(
        'Bash commands run as root before the runner starts (install tools, mount caches). A non-zero exit gives ' +
          'the runner up. The whole user data must stay within EC2’s 16 KB: about 4 KB are left for this.',
      ),
    shutdownCommand: z
      .string()
      .max(1024, { error: 'is at most 1024 characters' })
      .refine((value) => value.trim() !== '', {
        error: 'must not be empty (use `true` to keep the instance)',
      })
      .refine((value) => !CONTROL.test(value), { error: 'must be one line' })
      .optional()
      .describe(
        'Command run once the runner is done (or cannot start). Default `shutdown -h now`; with the launch’s ' +
          '`InstanceInitiatedShutdownBehavior: terminate` the instance terminates itself.',
      ),
    parameterTimeout: duration({ min: 30_000, max: 3_600_000 })
      .optional()
      .describe(
        'How long the start script waits for its runner parameter before it gives up and shuts the instance down ' +
          '(whole seconds, rounded up). Default 10m.',
      ),
  })
  .describe(
    'Settings of the start script runner-fleet renders as user data for `imageId` launches (docs/ec2-start-script.md). ' +
      'With a launch template, the template’s user data is used instead.',
  );

function unique(what: string) {
  return (values: readonly string[], ctx: z.RefinementCtx) => {
    const seen = new Set<string>();
    values.forEach((value, index) => {
      if (seen.has(value)) {
        ctx.addIssue({ code: 'custom', path: [index], message: `duplicate ${what} ${value}` });
      }
      seen.add(value);
    });
  };
}

export const ec2ProviderSchema = z
  .strictObject({
    kind: z.literal('ec2').describe('Selects the ec2 provider.'),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, { error: 'must be an AWS region such as eu-west-1' })
      .describe('AWS region.'),
    endpoint: httpUrl()
      .optional()
      .describe('Endpoint override for EC2 and SSM (e.g. a local moto server in tests).'),
    launchTemplate: launchTemplate
      .optional()
      .describe(
        'Launch template to start instances from. It must require IMDSv2 (`HttpTokens: required`) and terminate ' +
          'on shutdown, and carry the instance profile, security groups and start-script user data.',
      ),
    imageId: z
      .string()
      .regex(/^ami-[0-9a-f]+$/, { error: 'must look like ami-0123456789abcdef0' })
      .optional()
      .describe('AMI. Without a launch template it is required; with one it overrides the template’s.'),
    instanceProfile: instanceProfile
      .optional()
      .describe(
        'IAM instance profile (name or ARN) for `imageId` launches; it must allow reading and deleting the ' +
          'instance’s own SSM parameter. With a launch template, put it in the template.',
      ),
    securityGroupIds: z
      .array(z.string().regex(/^sg-[0-9a-f]+$/, { error: 'must look like sg-0123456789abcdef0' }))
      .min(1, { error: 'give at least one security group, or leave the field out' })
      .max(16, { error: 'at most 16 security groups' })
      .superRefine(unique('security group'))
      .optional()
      .describe(
        'Security groups for `imageId` launches (default: the VPC’s default group). With a launch template, ' +
          'put them in the template.',
      ),
    instanceTypes: z
      .array(
        z.string().regex(/^[a-z0-9-]+\.[a-z0-9-]+$/, { error: 'must be an instance type such as m7g.large' }),
      )
      .min(1, { error: 'give at least one instance type, or leave the field out to use the template’s' })
      .max(20, { error: 'at most 20 instance types' })
      .superRefine(unique('instance type'))
      .optional()
      .describe(
        'Instance types, e.g. [m7g.large, m6g.large]. One type (and at most one subnet) launches with ' +
          'RunInstances; several launch with CreateFleet, which needs `launchTemplate`. Default: the template’s.',
      ),
    subnetIds: z
      .array(z.string().regex(/^subnet-[0-9a-f]+$/, { error: 'must look like subnet-0123456789abcdef0' }))
      .min(1, { error: 'give at least one subnet, or leave the field out' })
      .max(64, { error: 'at most 64 subnets' })
      .superRefine(unique('subnet'))
      .optional()
      .describe(
        'Subnets to spread instances over. Several launch with CreateFleet (needs `launchTemplate`). Default: ' +
          'the template’s, else the default VPC.',
      ),
    capacity: z
      .enum(['on-demand', 'spot'])
      .default('on-demand')
      .describe('Purchase option of the instances.'),
    allocationStrategy: z
      .enum(['price-capacity-optimized', 'capacity-optimized', 'lowest-price', 'prioritized'])
      .optional()
      .describe(
        'How CreateFleet picks among the instance types and subnets. Spot: `price-capacity-optimized` (default), ' +
          '`capacity-optimized` or `lowest-price`. On-demand: `lowest-price` (default) or `prioritized` (in the ' +
          'order of `instanceTypes`, then `subnetIds`).',
      ),
    onDemandFailover: z
      .union([
        z.literal(false),
        z
          .array(z.string().regex(/^[A-Za-z][A-Za-z0-9.]*$/, { error: 'must be an EC2 error code' }))
          .min(1, { error: 'give at least one error code, or false to turn failover off' }),
      ])
      .optional()
      .describe(
        'Spot only: EC2 error codes on which the same create is retried once on-demand, or `false`. Default: ' +
          `${DEFAULT_ON_DEMAND_FAILOVER_CODES.join(', ')}.`,
      ),
    ssm: ssm.prefault({}),
    tags: tags
      .optional()
      .describe(
        'Extra tags on the instances and their parameters, and on the volumes of RunInstances launches (CreateFleet ' +
          'cannot tag volumes: the launch template’s tag specifications apply).',
      ),
    userData: userDataSettingsSchema.optional(),
  })
  .superRefine((value, ctx) => {
    const types = value.instanceTypes?.length ?? 0;
    const subnets = value.subnetIds?.length ?? 0;
    const fleet = types > 1 || subnets > 1;
    if (value.launchTemplate === undefined) {
      if (value.imageId === undefined) {
        ctx.addIssue({ code: 'custom', message: 'give `launchTemplate` or `imageId` (or both)' });
        return;
      }
      if (value.instanceProfile === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['imageId'],
          message:
            'an `imageId` launch without a launch template needs `instanceProfile` (the instance reads its SSM ' +
            'parameter with it)',
        });
      }
      if (types === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['imageId'],
          message: 'an `imageId` launch without a launch template needs `instanceTypes` (one type)',
        });
      }
      if (types > 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['instanceTypes'],
          message:
            'several instance types launch through CreateFleet, which needs `launchTemplate`; give one type ' +
            'or a launch template',
        });
      }
      if (subnets > 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['subnetIds'],
          message:
            'several subnets launch through CreateFleet, which needs `launchTemplate`; give one subnet or a ' +
            'launch template',
        });
      }
      // The whole user data must fit EC2's 16 KB (checked once its fields are valid); the fleet name is not known
      // here, so the default prefix is counted at its longest.
      const settings = userDataSettingsSchema.safeParse(value.userData);
      if (value.userData !== undefined && settings.success) {
        const place = ssm.safeParse(value.ssm);
        const prefix =
          (place.success ? place.data.pathPrefix : undefined) ?? `/runner-fleet/${'f'.repeat(63)}`;
        try {
          renderUserData(userDataSettingsOf(prefix, settings.data));
        } catch (error) {
          if (!(error instanceof UserDataError)) throw error;
          ctx.addIssue({ code: 'custom', path: ['userData'], message: error.message });
        }
      }
    } else {
      for (const field of ['instanceProfile', 'securityGroupIds'] as const) {
        if (value[field] !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: `with \`launchTemplate\`, put \`${field}\` in the launch template (CreateFleet cannot override it)`,
          });
        }
      }
      if (value.userData !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['userData'],
          message: 'with `launchTemplate`, the template’s user data starts the runner; remove `userData`',
        });
      }
    }
    const strategy = value.allocationStrategy;
    if (strategy !== undefined) {
      const allowed: readonly string[] =
        value.capacity === 'spot' ? SPOT_ALLOCATION_STRATEGIES : ON_DEMAND_ALLOCATION_STRATEGIES;
      if (!allowed.includes(strategy)) {
        ctx.addIssue({
          code: 'custom',
          path: ['allocationStrategy'],
          message: `\`${strategy}\` is not a ${value.capacity} allocation strategy; use one of ${allowed.join(', ')}`,
        });
      } else if (!fleet) {
        ctx.addIssue({
          code: 'custom',
          path: ['allocationStrategy'],
          message:
            'an allocation strategy chooses among several instance types or subnets; with one of each ' +
            '(RunInstances) remove it',
        });
      }
    }
    if (value.onDemandFailover !== undefined && value.capacity !== 'spot') {
      ctx.addIssue({
        code: 'custom',
        path: ['onDemandFailover'],
        message: '`onDemandFailover` applies to `capacity: spot` only',
      });
    }
  }, whenObject)
  .describe(
    'Runs each runner on its own EC2 instance. The registration reaches the instance through an SSM ' +
      'SecureString only that instance may read; see docs/ec2-provider.md.',
  );

export type Ec2ProviderConfig = z.output<typeof ec2ProviderSchema>;
export type Ec2UserDataSettings = z.output<typeof userDataSettingsSchema>;
