/**
 * Defaults of fleet.yaml, in one place: the schema applies them, the cross-field rules read them (they run on the
 * raw document, where an omitted field means its default) and the generated reference shows them.
 */
export const DEFAULTS = {
  name: 'runner-fleet',
  githubUrl: 'https://github.com',
  /** GitHub's secondary limit on runner-creating POSTs per installation and minute. */
  createsPerMinute: 180,
  serverHost: '127.0.0.1',
  serverPort: 8080,
  storePath: './runner-fleet.db',
  resyncInterval: '30s',
  orphanGracePeriod: '2m',
  failureBackoff: '5s',
  concurrency: 64,
  runnerGroup: 'Default',
  minIdle: 0,
  ephemeral: true,
  registration: 'jit',
  discovery: 'webhook',
  priority: 0,
  bootstrapTimeout: '10m',
  idleTimeout: '5m',
  rerunInterruptedJobs: false,
} as const;

/** The label every self-hosted runner has; accepted in `labels` but dropped, since it is implicit. */
export const IMPLICIT_LABEL = 'self-hosted';
