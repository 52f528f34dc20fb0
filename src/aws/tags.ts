/**
 * Tag keys runner-fleet puts on what it creates in AWS. Ownership is found by these tags (DescribeInstances filters,
 * IAM conditions), so they are one list: the ec2 provider, the IAM policies, the start script and deploy/aws use them.
 * Tag values are names and ids only, never a secret.
 */
export const TAG_FLEET = 'runner-fleet:fleet';
export const TAG_SCALE_SET = 'runner-fleet:scale-set';
export const TAG_RUNNER = 'runner-fleet:runner';
/** On an SSM parameter: the instance that alone may read and delete it. */
export const TAG_INSTANCE_ID = 'runner-fleet:instance-id';
/**
 * On an SSM parameter: the ARN of the instance that alone may read and delete it. IAM compares it with the
 * `ec2:SourceInstanceARN` of the caller (the instance policy in src/aws/policies.ts), which is an ARN, not an id.
 */
export const TAG_INSTANCE_ARN = 'runner-fleet:instance-arn';
/**
 * On an EC2 instance: how its runner ended, set by the start script on its own instance right before it shuts down
 * (best effort), and read by the ec2 provider once the instance has ended (never while it is pending or running).
 * The value is the runner's final exit code in decimal, or one of EXIT_CODE_VALUES. The instance role may set this key
 * and no other (src/aws/policies.ts, SID.tagOwnOutcome).
 */
export const TAG_EXIT_CODE = 'runner-fleet:exit-code';
/** The values of TAG_EXIT_CODE that are not exit codes. */
export const EXIT_CODE_VALUES = {
  /** The start script gave up waiting for its runner parameter. */
  noParameter: 'no-parameter',
  /** The start script gave up before the runner ran (bad parameter, missing tool, failed pre-runner script...). */
  startFailed: 'start-failed',
  /** The instance saw a spot interruption notice (IMDS spot/instance-action) while its runner ran. */
  interrupted: 'interrupted',
} as const;
