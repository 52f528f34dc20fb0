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
