/**
 * Workflow jobs and runs of a repository: what a controller reads to repair a missed webhook, and the re-run of a job
 * whose runner was lost (a new attempt of its run, once the run has ended).
 */
import type { SimContext } from '../context.js';
import { DOCS, GitHubError, notFound } from '../errors.js';
import { jobJson, runJson, runStatus } from '../payloads.js';
import type { RestRequest, RestRoute } from '../rest.js';
import { paginate } from '../rest.js';
import { resolveRepo } from './scope.js';

const RUN_STATUSES = new Set([
  'completed',
  'action_required',
  'cancelled',
  'failure',
  'neutral',
  'skipped',
  'stale',
  'success',
  'timed_out',
  'in_progress',
  'queued',
  'requested',
  'waiting',
  'pending',
]);

function numericId(raw: string | undefined): number {
  return /^\d+$/.test(raw ?? '') ? Number(raw) : NaN;
}

export function actionsRoutes(ctx: SimContext): RestRoute[] {
  const repoOf = (req: RestRequest, docs: string) =>
    resolveRepo(ctx, req.identity, req.params.owner ?? '', req.params.repo ?? '', 'actions', false, docs);
  /** The run a path names, 404 also when it belongs to another repository. */
  const runOf = (req: RestRequest, docs: string) => {
    const repo = repoOf(req, docs);
    const run = ctx.engine.run(numericId(req.params.run_id));
    if (!run || run.repo !== repo) throw notFound(docs);
    return run;
  };

  return [
    {
      method: 'GET',
      path: '/repos/{owner}/{repo}/actions/jobs/{job_id}',
      access: 'installation',
      handler: (req) => {
        const repo = repoOf(req, DOCS.jobs);
        const job = ctx.engine.get(numericId(req.params.job_id));
        if (!job || job.repo !== repo) throw notFound(DOCS.jobs);
        return { status: 200, body: jobJson(ctx.urls, job) };
      },
    },
    {
      method: 'POST',
      path: '/repos/{owner}/{repo}/actions/jobs/{job_id}/rerun',
      access: 'installation',
      handler: (req) => {
        // Needs the App's actions permission with write access, as on GitHub.
        const repo = resolveRepo(
          ctx,
          req.identity,
          req.params.owner ?? '',
          req.params.repo ?? '',
          'actions',
          true,
          DOCS.rerunJob,
        );
        const job = ctx.engine.get(numericId(req.params.job_id));
        if (!job || job.repo !== repo) throw notFound(DOCS.rerunJob);
        const result = ctx.engine.rerun(job);
        if (result === 'no-run') throw notFound(DOCS.rerunJob);
        if (result === 'run-in-progress') {
          throw new GitHubError(403, 'The workflow run containing this job is already running', {
            documentationUrl: DOCS.rerunJob,
          });
        }
        return { status: 201, body: {} };
      },
    },
    {
      method: 'GET',
      path: '/repos/{owner}/{repo}/actions/runs',
      access: 'installation',
      handler: (req) => {
        const repo = repoOf(req, DOCS.runs);
        const wanted = req.query.status;
        // An unknown status filter matches nothing, as on GitHub.
        const runs = [...ctx.engine.runsOf(repo)].reverse().filter((run) => {
          if (wanted === undefined || wanted === '') return true;
          if (!RUN_STATUSES.has(wanted)) return false;
          const s = runStatus(ctx.engine.jobsOf(run));
          return s.status === wanted || s.conclusion === wanted;
        });
        const page = paginate(ctx, req, runs);
        return {
          status: 200,
          body: {
            total_count: runs.length,
            workflow_runs: page.items.map((run) => runJson(ctx.urls, run, ctx.engine.jobsOf(run))),
          },
          headers: page.headers,
        };
      },
    },
    {
      method: 'GET',
      path: '/repos/{owner}/{repo}/actions/runs/{run_id}',
      access: 'installation',
      handler: (req) => {
        const run = runOf(req, DOCS.runs);
        return { status: 200, body: runJson(ctx.urls, run, ctx.engine.jobsOf(run)) };
      },
    },
    {
      method: 'GET',
      path: '/repos/{owner}/{repo}/actions/runs/{run_id}/jobs',
      access: 'installation',
      handler: (req) => {
        const run = runOf(req, DOCS.jobs);
        const jobs = ctx.engine.jobsOf(run);
        const page = paginate(ctx, req, jobs);
        return {
          status: 200,
          body: { total_count: jobs.length, jobs: page.items.map((j) => jobJson(ctx.urls, j)) },
          headers: page.headers,
        };
      },
    },
  ];
}
