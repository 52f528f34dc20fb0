/**
 * Self-hosted runner endpoints at repository, organization and enterprise level: list (name filter, pagination),
 * get, delete, generate-jitconfig, registration-token, remove-token and labels.
 */
import type { SimContext } from '../context.js';
import { DOCS, GitHubError, notFound } from '../errors.js';
import { encodeJitConfig, runnerFiles } from '../jit-config.js';
import type { Runner, ScopeRef } from '../model.js';
import { scopeKey } from '../model.js';
import { iso, labelsJson, runnerJson, runnerJsonText } from '../payloads.js';
import type { RestRequest, RestRoute } from '../rest.js';
import { paginate } from '../rest.js';
import { validateBody } from '../validate.js';
import type { ScopeKind } from './scope.js';
import { resolveScope } from './scope.js';

const PREFIXES: Record<ScopeKind, string> = {
  org: '/orgs/{org}/actions/runners',
  repo: '/repos/{owner}/{repo}/actions/runners',
  enterprise: '/enterprises/{enterprise}/actions/runners',
};

const docs = DOCS.runners;

function runnerIn(ctx: SimContext, scope: ScopeRef, rawId: string | undefined): Runner {
  const id = /^\d+$/.test(rawId ?? '') ? Number(rawId) : NaN;
  const runner = Number.isSafeInteger(id) ? ctx.runners.registry.getInScope(scopeKey(scope), id) : undefined;
  if (!runner) throw notFound(docs);
  return runner;
}

function labelNames(body: Record<string, unknown>): string[] {
  const labels = (body.labels as string[]).map((l) => l.trim());
  if (labels.some((l) => l.length === 0 || l.length > 256)) {
    throw new GitHubError(422, 'Validation Failed: labels must be 1 to 256 characters', {
      documentationUrl: docs,
    });
  }
  return labels;
}

export function runnerRoutes(ctx: SimContext): RestRoute[] {
  const routes: RestRoute[] = [];
  for (const kind of ['org', 'repo', 'enterprise'] as const) {
    const base = PREFIXES[kind];
    const scopeOf = (req: RestRequest, write: boolean) =>
      resolveScope(ctx, req.identity, kind, req.params, write, docs);
    const runnerOf = (req: RestRequest, write: boolean) =>
      runnerIn(ctx, scopeOf(req, write), req.params.runner_id);
    /** The runner and the labels a label write names (POST adds them, PUT replaces: PUT may name none). */
    const labelWrite = (req: RestRequest, minItems: number) => {
      const runner = runnerOf(req, true);
      const body = validateBody(
        req.body,
        { labels: { type: 'string[]', required: true, minItems, maxItems: 100 } },
        docs,
      );
      return { runner, labels: labelNames(body) };
    };

    routes.push(
      {
        method: 'GET',
        path: base,
        access: 'installation',
        handler: (req) => {
          const scope = scopeOf(req, false);
          const key = scopeKey(scope);
          let all: readonly Runner[];
          if (req.query.name !== undefined) {
            const one = ctx.runners.registry.byName(key, req.query.name);
            all = one ? [one] : [];
          } else {
            all = ctx.runners.registry.list(key);
          }
          const page = paginate(ctx, req, all);
          return {
            status: 200,
            json: `{"total_count":${all.length},"runners":[${page.items.map(runnerJsonText).join(',')}]}`,
            headers: page.headers,
          };
        },
      },
      {
        method: 'GET',
        path: `${base}/{runner_id}`,
        access: 'installation',
        handler: (req) => ({
          status: 200,
          body: runnerJson(runnerOf(req, false)),
        }),
      },
      {
        method: 'DELETE',
        path: `${base}/{runner_id}`,
        access: 'installation',
        handler: (req) => {
          const runner = runnerOf(req, true);
          if (runner.busy) {
            throw new GitHubError(422, `Bad request - Runner "${runner.name}" is still running a job"`, {
              documentationUrl: docs,
            });
          }
          ctx.runners.remove(runner);
          return { status: 204 };
        },
      },
      {
        method: 'POST',
        path: `${base}/generate-jitconfig`,
        access: 'installation',
        creates: true,
        handler: async (req) => {
          const scope = scopeOf(req, true);
          const body = validateBody(
            req.body,
            {
              name: { type: 'string', required: true },
              runner_group_id: { type: 'integer', required: true },
              labels: { type: 'string[]', required: true, minItems: 1, maxItems: 100 },
              work_folder: { type: 'string' },
            },
            docs,
          );
          const name = (body.name as string).trim();
          if (name.length === 0 || name.length > 64) {
            throw new GitHubError(422, 'Validation Failed: name must be 1 to 64 characters', {
              documentationUrl: docs,
            });
          }
          const group = ctx.world.group(body.runner_group_id as number);
          if (!group || (scope.kind === 'repo' && !group.isDefault)) throw notFound(docs);
          const jitKey = await ctx.jitKey;
          const runner = ctx.runners.create({
            scope,
            name,
            group,
            labels: labelNames(body),
            readOnlyLabels: ['self-hosted'],
            ephemeral: true,
            mode: 'jit',
            publicKey: jitKey.publicKey,
          });
          const files = runnerFiles(
            runner,
            { web: ctx.urls.web, broker: ctx.broker.urls.broker, tokenUrl: ctx.broker.urls.token },
            jitKey.params,
          );
          if (typeof body.work_folder === 'string' && body.work_folder.length > 0)
            files.runner.workFolder = body.work_folder;
          return {
            status: 201,
            body: { runner: runnerJson(runner), encoded_jit_config: encodeJitConfig(files) },
          };
        },
      },
      ...(['registration', 'remove'] as const).map((purpose): RestRoute => ({
        method: 'POST',
        path: `${base}/${purpose}-token`,
        access: 'installation',
        handler: (req) => {
          const { token, expiresAt } = ctx.tokens.issue(purpose, scopeOf(req, true));
          return { status: 201, body: { token, expires_at: iso(expiresAt) } };
        },
      })),
      {
        method: 'GET',
        path: `${base}/{runner_id}/labels`,
        access: 'installation',
        handler: (req) => ({
          status: 200,
          body: labelsJson(runnerOf(req, false)),
        }),
      },
      {
        method: 'POST',
        path: `${base}/{runner_id}/labels`,
        access: 'installation',
        handler: (req) => {
          const { runner, labels } = labelWrite(req, 1);
          const custom = runner.labels.filter((l) => l.type === 'custom').map((l) => l.name);
          ctx.runners.setCustomLabels(runner, [...custom, ...labels]);
          return { status: 200, body: labelsJson(runner) };
        },
      },
      {
        method: 'PUT',
        path: `${base}/{runner_id}/labels`,
        access: 'installation',
        handler: (req) => {
          const { runner, labels } = labelWrite(req, 0);
          ctx.runners.setCustomLabels(runner, labels);
          return { status: 200, body: labelsJson(runner) };
        },
      },
      {
        method: 'DELETE',
        path: `${base}/{runner_id}/labels`,
        access: 'installation',
        handler: (req) => {
          const runner = runnerOf(req, true);
          ctx.runners.setCustomLabels(runner, []);
          return { status: 200, body: labelsJson(runner, 'read-only') };
        },
      },
      {
        method: 'DELETE',
        path: `${base}/{runner_id}/labels/{name}`,
        access: 'installation',
        handler: (req) => {
          const runner = runnerOf(req, true);
          const name = (req.params.name ?? '').toLowerCase();
          const label = runner.labels.find((l) => l.name.toLowerCase() === name);
          if (!label) throw notFound(docs);
          if (label.type === 'read-only') {
            throw new GitHubError(422, `Bad request - Cannot remove read-only label "${label.name}"`, {
              documentationUrl: docs,
            });
          }
          const custom = runner.labels.filter((l) => l.type === 'custom' && l !== label).map((l) => l.name);
          ctx.runners.setCustomLabels(runner, custom);
          return { status: 200, body: labelsJson(runner) };
        },
      },
    );
  }
  return routes;
}
