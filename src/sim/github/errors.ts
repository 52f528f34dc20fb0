/**
 * GitHub's error responses. GitHub answers every failure with `{message, documentation_url, status}`; clients
 * (octokit's throttling and retry plugins, runner-fleet's own client) branch on the status and on the message text,
 * so both are kept close to what github.com sends.
 */

export const DOCS = {
  rest: 'https://docs.github.com/rest',
  runners: 'https://docs.github.com/rest/actions/self-hosted-runners',
  runnerGroups: 'https://docs.github.com/rest/actions/self-hosted-runner-groups',
  jobs: 'https://docs.github.com/rest/actions/workflow-jobs',
  runs: 'https://docs.github.com/rest/actions/workflow-runs',
  rerunJob: 'https://docs.github.com/rest/actions/workflow-runs#re-run-a-job-from-a-workflow-run',
  apps: 'https://docs.github.com/rest/apps/apps',
  deliveries: 'https://docs.github.com/rest/apps/webhooks',
  rateLimit: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
  secondaryRateLimit:
    'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
  auth: 'https://docs.github.com/rest/overview/authenticating-to-the-rest-api',
} as const;

export interface ErrorBody {
  message: string;
  documentation_url: string;
  status: string;
  errors?: unknown[];
}

/** An HTTP error in GitHub's shape. Thrown by handlers; the REST plumbing turns it into the response. */
export class GitHubError extends Error {
  readonly status: number;
  readonly code: string;
  readonly documentationUrl: string;
  readonly headers: Record<string, string>;
  readonly errors: unknown[] | undefined;

  constructor(
    status: number,
    message: string,
    options: {
      documentationUrl?: string;
      headers?: Record<string, string>;
      errors?: unknown[];
      code?: string;
    } = {},
  ) {
    super(message);
    this.name = 'GitHubError';
    this.status = status;
    this.code = options.code ?? `github_${status}`;
    this.documentationUrl = options.documentationUrl ?? DOCS.rest;
    this.headers = options.headers ?? {};
    this.errors = options.errors;
  }

  body(): ErrorBody {
    const body: ErrorBody = {
      message: this.message,
      documentation_url: this.documentationUrl,
      status: String(this.status),
    };
    if (this.errors) body.errors = this.errors;
    return body;
  }
}

export const notFound = (documentationUrl: string = DOCS.rest): GitHubError =>
  new GitHubError(404, 'Not Found', { documentationUrl });

export const badCredentials = (): GitHubError =>
  new GitHubError(401, 'Bad credentials', { documentationUrl: DOCS.rest });

export const requiresAuthentication = (documentationUrl: string = DOCS.rest): GitHubError =>
  new GitHubError(401, 'Requires authentication', { documentationUrl });

export const notAccessibleByIntegration = (documentationUrl: string = DOCS.rest): GitHubError =>
  new GitHubError(403, 'Resource not accessible by integration', { documentationUrl });

export const problemsParsingJson = (): GitHubError =>
  new GitHubError(400, 'Problems parsing JSON', { documentationUrl: DOCS.rest });

/** 422 in GitHub's "validation failed, simple" form: `Invalid request.\n\n<detail>` */
export const invalidRequest = (detail: string, documentationUrl: string = DOCS.rest): GitHubError =>
  new GitHubError(422, `Invalid request.\n\n${detail}`, { documentationUrl });
