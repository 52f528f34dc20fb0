/**
 * The fleet.yaml schema (zod 4). Objects are strict: an unknown key is an error, since a misspelt key silently
 * falling back to a default is the classic autoscaler misconfiguration. `.describe()` texts feed the generated
 * docs/configuration.md. Rules that span several fields or scale sets live in rules.ts.
 */
import { z } from 'zod';
import { providerSchema } from '../providers/schemas.js';
import { DEFAULTS, IMPLICIT_LABEL } from './defaults.js';
import { duration } from '../lib/duration.js';
import { dnsLabel, httpUrl, nonEmpty, whenObject } from '../lib/zod-formats.js';
import type { FleetConfig, GitHubAuthConfig, Scope } from '../core/fleet-config.js';

/** Longest scale set name: runner names `<scale-set>-<random>` and pod names must fit in a DNS label. */
export const MAX_SCALE_SET_NAME = 40;
export const MAX_LABELS = 100;
export const MAX_LABEL_LENGTH = 256;
/** Upper bound of `max` and `minIdle`: far above any real fleet, far below what would exhaust memory. */
export const MAX_RUNNERS = 10_000;
export const MAX_SCALE_SETS = 500;
export const MAX_PRIORITY = 1_000_000;
/** Secrets accepted at once during a webhook secret rotation (old and new, and a spare). */
export const MAX_WEBHOOK_SECRETS = 3;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const LOGIN = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}$/;
const REPO = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100}$/;
const PEM_PRIVATE_KEY =
  /^-----BEGIN (RSA )?PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END \1PRIVATE KEY-----$/;

const portNumber = z
  .number()
  .int()
  .min(0, { error: 'must be a port number, 0 to 65535' })
  .max(65535, { error: 'must be a port number, 0 to 65535' });

/** Adds one issue at the object unless exactly one of `keys` is present. Runs even when a field failed. */
function exactlyOne(keys: readonly string[], message: string) {
  return [
    (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
      if (keys.filter((key) => value[key] !== undefined).length !== 1)
        ctx.addIssue({ code: 'custom', message });
    },
    whenObject,
  ] as const;
}

/** An integer id, also accepted as a string of digits so it can come from `${env:...}`. */
function numericId(what: string) {
  const message = `expected a positive integer (${what})`;
  const bound = `must be at most ${Number.MAX_SAFE_INTEGER} (${what})`;
  return z
    .union(
      [
        z
          .number()
          .int({ error: message })
          .positive({ error: message })
          .max(Number.MAX_SAFE_INTEGER, { error: bound }),
        z.string().regex(/^[1-9]\d*$/),
      ],
      {
        error: message,
      },
    )
    .transform(Number)
    .refine((n) => Number.isSafeInteger(n), { error: bound })
    .meta({ docType: 'integer' });
}

const privateKey = z
  .string()
  .superRefine((value, ctx) => {
    // Never echo the value: it is (or is meant to be) a private key.
    if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(value)) {
      ctx.addIssue({
        code: 'custom',
        message: 'encrypted private keys are not supported; export it unencrypted',
      });
    } else if (!PEM_PRIVATE_KEY.test(value.trim())) {
      ctx.addIssue({
        code: 'custom',
        message:
          'must be a PEM private key (-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----); ' +
          'keep it in a file and write ${file:/path/to/app.pem}',
      });
    }
  })
  .meta({ docType: 'PEM string' });

const appAuth = z.strictObject({
  id: numericId('the GitHub App id').describe('GitHub App id.'),
  privateKey: privateKey.describe('The App private key (PEM). Use `${file:...}` or `${env:...}`.'),
  installationId: numericId('the installation id')
    .optional()
    .describe('Installation id. Default: looked up per scope (org, repo or enterprise).'),
});

const authSchema = z
  .strictObject({
    app: appAuth.optional().describe('Authenticate as a GitHub App (recommended for org and repo scopes).'),
    token: z
      .string()
      .regex(/^\S+$/, { error: 'must be a token: no spaces or newlines, not empty' })
      .optional()
      .meta({ docType: 'secret string' })
      .describe('A personal access token (classic PAT with manage_runners:enterprise for enterprise scope).'),
  })
  .superRefine(...exactlyOne(['app', 'token'], 'give exactly one of `app` or `token`'))
  .transform((auth): GitHubAuthConfig =>
    auth.app !== undefined ? { app: auth.app } : { token: auth.token! },
  );

/** The REST base for a web URL: api.github.com, api.<sub>.ghe.com (data residency), or <url>/api/v3 (GHES). */
export function deriveApiUrl(url: string): { apiUrl: string; ghes: boolean } {
  const host = new URL(url).hostname.toLowerCase();
  if (host === 'github.com' || host === 'www.github.com')
    return { apiUrl: 'https://api.github.com', ghes: false };
  if (host.endsWith('.ghe.com')) return { apiUrl: `https://api.${host}`, ghes: false };
  return { apiUrl: `${url}/api/v3`, ghes: true };
}

const githubSchema = z
  .strictObject({
    url: httpUrl()
      .prefault(DEFAULTS.githubUrl)
      .describe('Web URL of GitHub: https://github.com, a GHE.com URL or a GitHub Enterprise Server URL.'),
    apiUrl: httpUrl()
      .optional()
      .describe(
        'REST API base. Default: derived from `url` (see Derived values). Set it for the simulator, e.g. ' +
          'http://127.0.0.1:3000.',
      ),
    auth: authSchema.describe('Exactly one of `app` or `token`.'),
    caFile: nonEmpty()
      .optional()
      .describe(
        'PEM file of the certificate authorities that sign your GitHub Enterprise Server certificate (a private ' +
          'CA), trusted in addition to the default roots (relative to the config file). Also used for an https:// ' +
          'proxy. Outbound proxies come from `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`.',
      ),
    createsPerMinute: z
      .number()
      .int()
      .min(2)
      .max(100_000)
      .default(DEFAULTS.createsPerMinute)
      .describe(
        'Runner-creating calls (JIT config POSTs) a minute per App installation (or token) and GitHub host: the ' +
          "budget runner creation is paced to. Default GitHub's secondary limit of 180; set it lower for a GitHub " +
          'Enterprise Server with a stricter limit, or when other tools create runners with the same App.',
      ),
  })
  .transform((github) => {
    const derived = deriveApiUrl(github.url);
    return {
      url: github.url,
      apiUrl: github.apiUrl ?? derived.apiUrl,
      ghes: derived.ghes,
      auth: github.auth,
      createsPerMinute: github.createsPerMinute,
      ...(github.caFile !== undefined ? { caFile: github.caFile } : {}),
    };
  });

const scopeSchema = z
  .strictObject({
    org: z
      .string()
      .regex(LOGIN, { error: 'must be an organization login' })
      .optional()
      .describe('Organization login.'),
    repo: z
      .string()
      .regex(REPO, { error: 'must be owner/name' })
      .optional()
      .describe('Repository as `owner/name`.'),
    enterprise: z
      .string()
      .regex(LOGIN, { error: 'must be an enterprise slug' })
      .optional()
      .describe('Enterprise slug (needs `github.auth.token`).'),
  })
  .superRefine(
    ...exactlyOne(['org', 'repo', 'enterprise'], 'give exactly one of `org`, `repo` or `enterprise`'),
  )
  .transform((scope): Scope => {
    if (scope.org !== undefined) return { org: scope.org };
    if (scope.repo !== undefined) return { repo: scope.repo };
    return { enterprise: scope.enterprise! };
  });

const label = z.string().superRefine((value, ctx) => {
  if (value.trim() === '') ctx.addIssue({ code: 'custom', message: 'must not be empty' });
  else if (value.trim() !== value)
    ctx.addIssue({ code: 'custom', message: 'must not start or end with spaces' });
  else if (value.includes(',')) ctx.addIssue({ code: 'custom', message: 'must not contain a comma' });
  else if (value.length > MAX_LABEL_LENGTH) {
    ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_LABEL_LENGTH} characters` });
  }
});

const isImplicit = (value: string) => value.toLowerCase() === IMPLICIT_LABEL;

const labelsSchema = z
  .array(label)
  .superRefine((labels, ctx) => {
    const seen = new Map<string, number>();
    labels.forEach((value, index) => {
      const key = value.toLowerCase();
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [index],
          message: `duplicate label (same as labels[${first}])`,
        });
      } else seen.set(key, index);
    });
    const count = labels.filter((value) => !isImplicit(value)).length;
    if (count < 1) {
      ctx.addIssue({ code: 'custom', message: `needs at least one label besides ${IMPLICIT_LABEL}` });
    } else if (count > MAX_LABELS) {
      ctx.addIssue({ code: 'custom', message: `at most ${MAX_LABELS} labels` });
    }
  })
  .transform((labels) => labels.filter((value) => !isImplicit(value)));

const identitySchema = z
  .strictObject({
    aws: z
      .strictObject({
        roleArn: z
          .string()
          .regex(/^arn:aws(-[a-z]+)*:iam::\d{12}:role\/([\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/, {
            error: 'must be an IAM role ARN: arn:aws:iam::<12-digit account>:role/<path/name>',
          })
          .describe(
            'IAM role ARN: set as the IRSA annotation `eks.amazonaws.com/role-arn`, or (with `podIdentity`) the ' +
              'role of the EKS Pod Identity association.',
          ),
        podIdentity: z
          .boolean()
          .optional()
          .describe(
            'Use EKS Pod Identity instead of IRSA: no annotation; associate `roleArn` with the runner ' +
              'ServiceAccount (`aws eks create-pod-identity-association`; `runner-fleet doctor` names it).',
          ),
      })
      .optional()
      .describe('AWS: IAM Roles for Service Accounts (IRSA) by default, or EKS Pod Identity.'),
    gcp: z
      .strictObject({
        serviceAccount: z
          .string()
          .regex(/^[a-z]([-a-z0-9]*[a-z0-9])?@[a-z]([-a-z0-9]*[a-z0-9])?\.iam\.gserviceaccount\.com$/, {
            error: 'must be a Google service account: <name>@<project>.iam.gserviceaccount.com',
          })
          .describe('Google service account, set as `iam.gke.io/gcp-service-account`.'),
      })
      .optional()
      .describe('GKE Workload Identity.'),
    azure: z
      .strictObject({
        clientId: z
          .string()
          .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, {
            error: 'must be a client id GUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx',
          })
          .describe(
            'Managed identity or app client id: annotation `azure.workload.identity/client-id` and pod label ' +
              '`azure.workload.identity/use: "true"`.',
          ),
      })
      .optional()
      .describe('Azure Workload Identity.'),
  })
  .superRefine((value, ctx) => {
    if (value.aws === undefined && value.gcp === undefined && value.azure === undefined) {
      ctx.addIssue({ code: 'custom', message: 'give one of `aws`, `gcp` or `azure`' });
    }
  }, whenObject);

export const scaleSetSchema = z.strictObject({
  name: dnsLabel(MAX_SCALE_SET_NAME).describe(
    `Unique name, at most ${MAX_SCALE_SET_NAME} characters of [a-z0-9-]: runner names are \`<name>-<random>\`.`,
  ),
  scope: scopeSchema.describe('Where runners register: exactly one of `org`, `repo` or `enterprise`.'),
  runnerGroup: nonEmpty()
    .default(DEFAULTS.runnerGroup)
    .describe('Runner group (org and enterprise scope; repository runners are always in Default).'),
  labels: labelsSchema.describe(
    `1 to ${MAX_LABELS} labels, matched case-insensitively against a job's \`runs-on\`. \`${IMPLICIT_LABEL}\` is ` +
      'implicit (accepted and dropped).',
  ),
  minIdle: z
    .number()
    .int()
    .min(0, { error: 'must be 0 or more' })
    .max(MAX_RUNNERS, { error: `must be at most ${MAX_RUNNERS}` })
    .default(DEFAULTS.minIdle)
    .describe('Idle runners kept ready when no job waits.'),
  max: z
    .number()
    .int()
    .min(1, { error: 'must be at least 1' })
    .max(MAX_RUNNERS, { error: `must be at most ${MAX_RUNNERS}` })
    .describe('Most runners of this scale set at once, in any state but deleted.'),
  ephemeral: z
    .boolean()
    .default(DEFAULTS.ephemeral)
    .describe('Single-use runners, removed after one job. `false` needs `registration: token`.'),
  registration: z
    .enum(['jit', 'token'])
    .default(DEFAULTS.registration)
    .describe(
      '`jit`: a just-in-time config per runner (one API call, one job); `token`: a registration token and ' +
        'config.sh (persistent runners, GHES without JIT).',
    ),
  discovery: z
    .enum(['webhook', 'scale-set'])
    .default(DEFAULTS.discovery)
    .describe(
      'How the controller learns of jobs. `webhook`: `workflow_job` webhooks sent to `/webhook` (GitHub must reach ' +
        'the controller). `scale-set`: GitHub’s runner scale set protocol, with no inbound connection: the ' +
        'controller registers a runner scale set named after this one (with these labels, in `runnerGroup`), ' +
        'long-polls its message queue over HTTPS and takes JIT configs from it; needs `registration: jit`. Webhooks ' +
        'for jobs of this scale set are ignored. See docs/scale-set-mode.md.',
    ),
  priority: z
    .number()
    .int()
    .min(-MAX_PRIORITY, { error: `must be between -${MAX_PRIORITY} and ${MAX_PRIORITY}` })
    .max(MAX_PRIORITY, { error: `must be between -${MAX_PRIORITY} and ${MAX_PRIORITY}` })
    .default(DEFAULTS.priority)
    .describe(
      'When several scale sets match a job, the highest priority wins (then fewest extra labels, then name).',
    ),
  bootstrapTimeout: duration({ min: 1, max: DAY })
    .prefault(DEFAULTS.bootstrapTimeout)
    .describe('A runner not online this long after its instance was created is deleted and replaced.'),
  idleTimeout: duration({ min: 1, max: 7 * DAY })
    .prefault(DEFAULTS.idleTimeout)
    .describe('Persistent runners idle this long (above minIdle) are removed.'),
  rerunInterruptedJobs: z
    .boolean()
    .default(DEFAULTS.rerunInterruptedJobs)
    .describe(
      'When the cloud takes a busy runner’s instance (a spot interruption, an eviction), ask GitHub to re-run the ' +
        'interrupted job once its workflow run has ended (POST .../actions/jobs/{job_id}/rerun; a GitHub App needs ' +
        '`actions: write`). Any provider may report an interruption; ec2 does.',
    ),
  identity: identitySchema
    .optional()
    .describe('Cloud identity for runner pods, and job pods in kubernetes container mode (kubernetes only).'),
  provider: providerSchema.describe(
    'Where the runners run: `kind` selects the provider block (see Providers).',
  ),
});

export const fleetConfigSchema = z
  .strictObject({
    name: dnsLabel()
      .default(DEFAULTS.name)
      .describe('Fleet name: owner label/tag on everything this controller creates. A DNS label.'),
    github: githubSchema.describe('Which GitHub, and how to authenticate.'),
    webhook: z
      .strictObject({
        secret: z
          .union([nonEmpty(), z.array(nonEmpty())], {
            error: 'expected a string or a list of strings',
          })
          .superRefine((value, ctx) => {
            if (typeof value === 'string') return;
            if (value.length === 0) ctx.addIssue({ code: 'custom', message: 'needs at least one secret' });
            if (value.length > MAX_WEBHOOK_SECRETS) {
              ctx.addIssue({
                code: 'custom',
                message: `at most ${MAX_WEBHOOK_SECRETS} secrets (keep only the ones in use during a rotation)`,
              });
            }
          })
          .meta({ docType: 'secret string or list' })
          .describe(
            'Webhook secret (HMAC key of X-Hub-Signature-256). Use `${env:...}` or `${file:...}`. A list while ' +
              'rotating it: a delivery signed with any listed secret is accepted (docs/security.md).',
          ),
      })
      .describe('The workflow_job webhook this controller receives at POST /webhook.'),
    server: z
      .strictObject({
        host: nonEmpty().default(DEFAULTS.serverHost).describe('Listen address.'),
        port: portNumber.default(DEFAULTS.serverPort).describe('Listen port (0: any free port).'),
        dashboardToken: nonEmpty()
          .optional()
          .meta({ docType: 'secret string' })
          .describe(
            'Bearer token required by the dashboard and /api/v1; needed when they are served beyond loopback.',
          ),
        dashboard: z
          .strictObject({
            host: nonEmpty()
              .default(DEFAULTS.serverHost)
              .describe('Listen address of the dashboard and /api/v1.'),
            port: portNumber.describe('Their port (0: any free port); not the same as `server.port`.'),
          })
          .optional()
          .describe(
            'Serve the dashboard and /api/v1 on a listener of their own, so `server.host:port` serves only ' +
              '/webhook, /healthz, /readyz and /metrics and may listen on 0.0.0.0 without a dashboard token.',
          ),
      })
      .superRefine((server, ctx) => {
        if (server.dashboard && server.dashboard.port !== 0 && server.dashboard.port === server.port) {
          ctx.addIssue({
            code: 'custom',
            path: ['dashboard', 'port'],
            message: `must differ from server.port (${server.port})`,
          });
        }
      })
      .prefault({})
      .describe('HTTP server: webhook, health, metrics, API and dashboard.'),
    store: z
      .strictObject({
        path: nonEmpty()
          .default(DEFAULTS.storePath)
          .describe('SQLite database file (relative to the working directory).'),
      })
      .prefault({})
      .describe('The controller state.'),
    controller: z
      .strictObject({
        resyncInterval: duration({ min: 1, max: DAY })
          .prefault(DEFAULTS.resyncInterval)
          .describe('Time between full resyncs (list runners from GitHub and instances from providers).'),
        orphanGracePeriod: duration({ max: 7 * DAY })
          .prefault(DEFAULTS.orphanGracePeriod)
          .describe(
            'How long a runner with this fleet’s name prefix and no instance may exist before removal.',
          ),
        failureBackoff: duration({ min: 1, max: 6 * HOUR })
          .prefault(DEFAULTS.failureBackoff)
          .describe('Base of the exponential backoff after a runner fails before taking a job.'),
        concurrency: z
          .number()
          .int()
          .min(1, { error: 'must be at least 1' })
          .max(1000, { error: 'must be at most 1000' })
          .default(DEFAULTS.concurrency)
          .describe(
            'Runner creates and removals in flight at once, across scale sets (GitHub calls have their own limits).',
          ),
      })
      .prefault({})
      .describe('Reconciler timing and concurrency.'),
    scaleSets: z
      .array(scaleSetSchema)
      .min(1, { error: 'needs at least one scale set' })
      .max(MAX_SCALE_SETS, { error: `at most ${MAX_SCALE_SETS} scale sets` })
      .describe('Groups of identical runners.'),
  })
  .transform((config) => ({
    ...config,
    // The sim provider talks to the simulator that also serves the GitHub API, unless told otherwise.
    scaleSets: config.scaleSets.map((set) =>
      set.provider.kind === 'sim' && set.provider.url === undefined
        ? { ...set, provider: { ...set.provider, url: new URL(config.github.apiUrl).origin } }
        : set,
    ),
  }));

export type ParsedFleetConfig = z.output<typeof fleetConfigSchema>;

// Compile-time contract: the schema's output must be usable wherever FleetConfig (core/fleet-config.ts) is expected.
type Expect<T extends true> = T;
type Assignable<From, To> = [From] extends [To] ? true : false;
export type SchemaOutputIsFleetConfig = Expect<Assignable<ParsedFleetConfig, FleetConfig>>;
