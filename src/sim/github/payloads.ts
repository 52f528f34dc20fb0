/**
 * JSON shapes of GitHub objects (runner, job, run, repository, organization, user, installation, app), built to
 * the schemas of GitHub's OpenAPI description so that real clients and the fidelity tests accept them.
 */
import { nodeId } from './ids.js';
import type { Installation, Job, Org, Repo, Run, Runner } from './model.js';

export interface Urls {
  /** Web root, e.g. http://127.0.0.1:PORT (the "github.com" of the simulator). */
  readonly web: string;
  /** REST root: the web root, or web root + /api/v3 in GHES mode. */
  readonly api: string;
}

export const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The user that "triggers" simulated workflows. */
export const SENDER = { login: 'octocat', id: 583231 } as const;

export function simpleUser(urls: Urls, login: string, id: number, type: 'User' | 'Organization' = 'User') {
  const api = `${urls.api}/users/${login}`;
  return {
    login,
    id,
    node_id: nodeId(type === 'User' ? 'User' : 'Organization', id),
    avatar_url: `${urls.web}/avatars/u/${id}?v=4`,
    gravatar_id: '',
    url: api,
    html_url: `${urls.web}/${login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type,
    site_admin: false,
  };
}

export const senderUser = (urls: Urls) => simpleUser(urls, SENDER.login, SENDER.id);

export function runnerJson(runner: Runner) {
  return {
    id: runner.id,
    name: runner.name,
    os: runner.os,
    status: runner.status,
    busy: runner.busy,
    ephemeral: runner.ephemeral,
    runner_group_id: runner.groupId,
    labels: runner.labels.map((l) => ({ id: l.id, name: l.name, type: l.type })),
  };
}

interface JsonCache {
  readonly status: string;
  readonly busy: boolean;
  readonly labels: readonly unknown[];
  readonly text: string;
}

const jsonCache = new WeakMap<Runner, JsonCache>();

/**
 * `runnerJson` as JSON text, cached per runner until its status, busy flag or labels (a new array on every change)
 * change: listing pages of 100 runners is the simulator's hottest path.
 */
export function runnerJsonText(runner: Runner): string {
  const cached = jsonCache.get(runner);
  if (
    cached &&
    cached.status === runner.status &&
    cached.busy === runner.busy &&
    cached.labels === runner.labels
  ) {
    return cached.text;
  }
  const text = JSON.stringify(runnerJson(runner));
  jsonCache.set(runner, { status: runner.status, busy: runner.busy, labels: runner.labels, text });
  return text;
}

export function labelsJson(runner: Runner, only?: 'read-only') {
  const labels = runner.labels
    .filter((l) => !only || l.type === only)
    .map((l) => ({ id: l.id, name: l.name, type: l.type }));
  return { total_count: labels.length, labels };
}

/** The REST `job` object (GET /repos/{o}/{r}/actions/jobs/{id}); also the core of the webhook's `workflow_job`. */
export function jobJson(urls: Urls, job: Job) {
  const repoApi = `${urls.api}/repos/${job.repo.fullName}`;
  return {
    id: job.id,
    run_id: job.runId,
    run_url: `${repoApi}/actions/runs/${job.runId}`,
    run_attempt: job.runAttempt,
    node_id: nodeId('CheckRun', job.id),
    head_sha: job.headSha,
    url: `${repoApi}/actions/jobs/${job.id}`,
    html_url: `${urls.web}/${job.repo.fullName}/actions/runs/${job.runId}/job/${job.id}`,
    status: job.status,
    conclusion: job.conclusion,
    created_at: iso(job.queuedAt),
    started_at: iso(job.startedAt ?? job.queuedAt),
    completed_at: job.completedAt === null ? null : iso(job.completedAt),
    name: job.name,
    steps: [] as unknown[],
    check_run_url: `${repoApi}/check-runs/${job.id}`,
    labels: [...job.labels],
    runner_id: job.runnerId,
    runner_name: job.runnerName,
    runner_group_id: job.runnerGroupId,
    runner_group_name: job.runnerGroupName,
    workflow_name: job.workflowName,
    head_branch: 'main',
  };
}

export function runStatus(jobs: readonly Job[]): { status: string; conclusion: string | null } {
  if (jobs.some((j) => j.status === 'in_progress')) return { status: 'in_progress', conclusion: null };
  if (jobs.some((j) => j.status === 'queued')) {
    return {
      status: jobs.some((j) => j.status === 'completed') ? 'in_progress' : 'queued',
      conclusion: null,
    };
  }
  const conclusions = jobs.map((j) => j.conclusion);
  const conclusion = conclusions.includes('failure')
    ? 'failure'
    : conclusions.includes('cancelled')
      ? 'cancelled'
      : 'success';
  return { status: 'completed', conclusion };
}

export function minimalRepository(urls: Urls, repo: Repo) {
  return repositoryFields(urls, repo);
}

export function runJson(urls: Urls, run: Run, jobs: readonly Job[]) {
  const repoApi = `${urls.api}/repos/${run.repo.fullName}`;
  const { status, conclusion } = runStatus(jobs);
  const repository = minimalRepository(urls, run.repo);
  const actor = senderUser(urls);
  return {
    id: run.id,
    name: run.name,
    node_id: nodeId('WorkflowRun', run.id),
    check_suite_id: run.id + 1,
    check_suite_node_id: nodeId('CheckSuite', run.id + 1),
    head_branch: 'main',
    head_sha: run.headSha,
    path: '.github/workflows/ci.yml',
    display_title: run.name,
    run_number: run.runNumber,
    run_attempt: run.attempt,
    event: 'push',
    status,
    conclusion,
    workflow_id: 161335,
    url: `${repoApi}/actions/runs/${run.id}`,
    html_url: `${urls.web}/${run.repo.fullName}/actions/runs/${run.id}`,
    pull_requests: [] as unknown[],
    created_at: iso(run.createdAt),
    updated_at: iso(run.updatedAt),
    run_started_at: iso(run.createdAt),
    actor,
    triggering_actor: actor,
    jobs_url: `${repoApi}/actions/runs/${run.id}/jobs`,
    logs_url: `${repoApi}/actions/runs/${run.id}/logs`,
    check_suite_url: `${repoApi}/check-suites/${run.id + 1}`,
    artifacts_url: `${repoApi}/actions/runs/${run.id}/artifacts`,
    cancel_url: `${repoApi}/actions/runs/${run.id}/cancel`,
    rerun_url: `${repoApi}/actions/runs/${run.id}/rerun`,
    previous_attempt_url:
      run.attempt > 1 ? `${repoApi}/actions/runs/${run.id}/attempts/${run.attempt - 1}` : null,
    workflow_url: `${repoApi}/actions/workflows/161335`,
    head_commit: {
      id: run.headSha,
      tree_id: run.headSha,
      message: run.name,
      timestamp: iso(run.createdAt),
      author: { name: 'Mona Octocat', email: 'octocat@github.com' },
      committer: { name: 'Mona Octocat', email: 'octocat@github.com' },
    },
    repository,
    head_repository: repository,
  };
}

function repositoryFields(urls: Urls, repo: Repo) {
  const api = `${urls.api}/repos/${repo.fullName}`;
  const web = `${urls.web}/${repo.fullName}`;
  const host = new URL(urls.web).host;
  return {
    id: repo.id,
    node_id: repo.nodeId,
    name: repo.name,
    full_name: repo.fullName,
    private: true,
    owner: simpleUser(urls, repo.owner.login, repo.owner.id, 'Organization'),
    html_url: web,
    description: null,
    fork: false,
    url: api,
    forks_url: `${api}/forks`,
    keys_url: `${api}/keys{/key_id}`,
    collaborators_url: `${api}/collaborators{/collaborator}`,
    teams_url: `${api}/teams`,
    hooks_url: `${api}/hooks`,
    issue_events_url: `${api}/issues/events{/number}`,
    events_url: `${api}/events`,
    assignees_url: `${api}/assignees{/user}`,
    branches_url: `${api}/branches{/branch}`,
    tags_url: `${api}/tags`,
    blobs_url: `${api}/git/blobs{/sha}`,
    git_tags_url: `${api}/git/tags{/sha}`,
    git_refs_url: `${api}/git/refs{/sha}`,
    trees_url: `${api}/git/trees{/sha}`,
    statuses_url: `${api}/statuses/{sha}`,
    languages_url: `${api}/languages`,
    stargazers_url: `${api}/stargazers`,
    contributors_url: `${api}/contributors`,
    subscribers_url: `${api}/subscribers`,
    subscription_url: `${api}/subscription`,
    commits_url: `${api}/commits{/sha}`,
    git_commits_url: `${api}/git/commits{/sha}`,
    comments_url: `${api}/comments{/number}`,
    issue_comment_url: `${api}/issues/comments{/number}`,
    contents_url: `${api}/contents/{+path}`,
    compare_url: `${api}/compare/{base}...{head}`,
    merges_url: `${api}/merges`,
    archive_url: `${api}/{archive_format}{/ref}`,
    downloads_url: `${api}/downloads`,
    issues_url: `${api}/issues{/number}`,
    pulls_url: `${api}/pulls{/number}`,
    milestones_url: `${api}/milestones{/number}`,
    notifications_url: `${api}/notifications{?since,all,participating}`,
    labels_url: `${api}/labels{/name}`,
    releases_url: `${api}/releases{/id}`,
    deployments_url: `${api}/deployments`,
    git_url: `git://${host}/${repo.fullName}.git`,
    ssh_url: `git@${host}:${repo.fullName}.git`,
    clone_url: `${web}.git`,
    svn_url: web,
    mirror_url: null,
    homepage: null,
    language: null,
    forks_count: 0,
    stargazers_count: 0,
    watchers_count: 0,
    size: 0,
    default_branch: 'main',
    open_issues_count: 0,
    is_template: false,
    topics: [] as string[],
    has_issues: true,
    has_projects: true,
    has_wiki: true,
    has_pages: false,
    has_downloads: true,
    has_discussions: false,
    archived: false,
    disabled: false,
    visibility: 'private',
    pushed_at: iso(repo.createdAt),
    created_at: iso(repo.createdAt),
    updated_at: iso(repo.createdAt),
  };
}

/** `repository` of a webhook payload (the `repository-webhooks` schema). */
export function webhookRepository(urls: Urls, repo: Repo) {
  return {
    ...repositoryFields(urls, repo),
    forks: 0,
    open_issues: 0,
    watchers: 0,
    license: null,
    web_commit_signoff_required: false,
    custom_properties: {},
  };
}

/** `organization` of a webhook payload (the `organization-simple-webhooks` schema). */
export function webhookOrganization(urls: Urls, org: Org) {
  const api = `${urls.api}/orgs/${org.login}`;
  return {
    login: org.login,
    id: org.id,
    node_id: org.nodeId,
    url: api,
    repos_url: `${api}/repos`,
    events_url: `${api}/events`,
    hooks_url: `${api}/hooks`,
    issues_url: `${api}/issues`,
    members_url: `${api}/members{/member}`,
    public_members_url: `${api}/public_members{/member}`,
    avatar_url: `${urls.web}/avatars/u/${org.id}?v=4`,
    description: null,
  };
}

export function installationJson(
  urls: Urls,
  installation: Installation,
  app: { id: number; slug: string; clientId: string },
  permissions: Record<string, string>,
  events: readonly string[] = ['workflow_job'],
) {
  const org = installation.account;
  return {
    id: installation.id,
    client_id: app.clientId,
    // GET /app/installations describes the account as simple-user AND enterprise (allOf), so it carries both
    // sets of required fields.
    account: {
      ...simpleUser(urls, org.login, org.id, 'Organization'),
      name: org.login,
      slug: org.login,
      created_at: iso(org.createdAt),
      updated_at: iso(org.createdAt),
    },
    repository_selection: 'all',
    access_tokens_url: `${urls.api}/app/installations/${installation.id}/access_tokens`,
    repositories_url: `${urls.api}/installation/repositories`,
    html_url: `${urls.web}/organizations/${org.login}/settings/installations/${installation.id}`,
    app_id: app.id,
    app_slug: app.slug,
    target_id: org.id,
    target_type: 'Organization',
    permissions: { ...permissions },
    events: [...events],
    created_at: iso(installation.createdAt),
    updated_at: iso(installation.createdAt),
    single_file_name: null,
    has_multiple_single_files: false,
    single_file_paths: [] as string[],
    suspended_by: null,
    suspended_at: null,
  };
}

export function appJson(
  urls: Urls,
  app: { id: number; slug: string; clientId: string; createdAt: number },
  owner: Org,
  permissions: Record<string, string>,
  installationsCount: number,
  events: readonly string[] = ['workflow_job'],
) {
  return {
    id: app.id,
    slug: app.slug,
    node_id: nodeId('Integration', app.id),
    client_id: app.clientId,
    owner: simpleUser(urls, owner.login, owner.id, 'Organization'),
    name: 'runner-fleet simulator',
    description: 'GitHub App of the runner-fleet GitHub simulator',
    external_url: urls.web,
    html_url: `${urls.web}/apps/${app.slug}`,
    created_at: iso(app.createdAt),
    updated_at: iso(app.createdAt),
    permissions: { ...permissions },
    events: [...events],
    installations_count: installationsCount,
  };
}

/** A `workflow_job` webhook payload. While queued, the runner fields are null, as on GitHub. */
export function workflowJobPayload(urls: Urls, action: 'queued' | 'in_progress' | 'completed', job: Job) {
  const org = job.repo.owner;
  const workflowJob = jobJson(urls, job);
  if (action === 'queued') {
    workflowJob.status = 'queued';
    workflowJob.conclusion = null;
    workflowJob.completed_at = null;
    workflowJob.runner_id = null;
    workflowJob.runner_name = null;
    workflowJob.runner_group_id = null;
    workflowJob.runner_group_name = null;
  } else if (action === 'in_progress') {
    workflowJob.status = 'in_progress';
    workflowJob.conclusion = null;
    workflowJob.completed_at = null;
  }
  return {
    action,
    workflow_job: workflowJob,
    repository: webhookRepository(urls, job.repo),
    organization: webhookOrganization(urls, org),
    sender: senderUser(urls),
    installation: { id: org.installationId, node_id: nodeId('IntegrationInstallation', org.installationId) },
  };
}
