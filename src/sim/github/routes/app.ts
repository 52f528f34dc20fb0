/**
 * GitHub App endpoints (App JWT): the App, its installations, installation access tokens, and the App webhook's
 * deliveries (list, get, redeliver). Plus GET /rate_limit.
 */
import type { SimContext } from '../context.js';
import { DOCS, GitHubError, notFound } from '../errors.js';
import { appJson, installationJson, iso } from '../payloads.js';
import type { RestRoute } from '../rest.js';
import { pageParams } from '../rest.js';
import { validateBody } from '../validate.js';
import type { DeliveryRecord } from '../webhooks.js';

function deliveryItem(r: DeliveryRecord) {
  return {
    id: r.id,
    guid: r.guid,
    delivered_at: iso(r.deliveredAt),
    redelivery: r.redelivery,
    duration: r.duration,
    status: r.status,
    status_code: r.statusCode,
    event: r.event,
    action: r.action,
    installation_id: r.installationId,
    repository_id: r.repositoryId,
    throttled_at: null,
  };
}

function deliveryDetail(r: DeliveryRecord) {
  let payload: unknown;
  try {
    payload = JSON.parse(r.body) as unknown;
  } catch {
    payload = null;
  }
  return {
    ...deliveryItem(r),
    url: r.url,
    request: { headers: { ...r.requestHeaders }, payload },
    response: { headers: r.responseHeaders, payload: r.responseBody },
  };
}

export function appRoutes(ctx: SimContext): RestRoute[] {
  const installationOr404 = (raw: string | undefined) => {
    const installation = /^\d+$/.test(raw ?? '') ? ctx.world.installation(Number(raw)) : undefined;
    if (!installation) throw notFound(DOCS.apps);
    return installation;
  };
  const instJson = (id: number) =>
    installationJson(
      ctx.urls,
      ctx.world.installation(id)!,
      { id: ctx.app.id, slug: ctx.app.slug, clientId: ctx.app.clientId },
      ctx.app.permissions,
      ctx.app.events,
    );

  return [
    {
      method: 'GET',
      path: '/app',
      access: 'app',
      handler: () => ({
        status: 200,
        body: appJson(
          ctx.urls,
          ctx.app,
          ctx.world.orgs()[0]!,
          ctx.app.permissions,
          ctx.world.installations().length,
          ctx.app.events,
        ),
      }),
    },
    {
      method: 'GET',
      path: '/app/installations',
      access: 'app',
      handler: () => ({ status: 200, body: ctx.world.installations().map((i) => instJson(i.id)) }),
    },
    {
      method: 'GET',
      path: '/app/installations/{installation_id}',
      access: 'app',
      handler: (req) => ({ status: 200, body: instJson(installationOr404(req.params.installation_id).id) }),
    },
    {
      method: 'POST',
      path: '/app/installations/{installation_id}/access_tokens',
      access: 'app',
      handler: (req) => {
        const installation = installationOr404(req.params.installation_id);
        const body = validateBody(
          req.body,
          { repositories: { type: 'string[]' }, repository_ids: { type: 'integer[]' } },
          DOCS.apps,
        );
        let permissions: Record<string, string> = { ...ctx.app.permissions };
        if (body.permissions !== undefined) {
          if (
            typeof body.permissions !== 'object' ||
            body.permissions === null ||
            Array.isArray(body.permissions)
          ) {
            throw new GitHubError(
              422,
              `Invalid request.\n\nFor 'properties/permissions', ${JSON.stringify(body.permissions)} is not an object.`,
              {
                documentationUrl: DOCS.apps,
              },
            );
          }
          const asked = body.permissions as Record<string, unknown>;
          for (const [name, level] of Object.entries(asked)) {
            const granted = ctx.app.permissions[name];
            if (
              !granted ||
              (level === 'write' && granted !== 'write') ||
              (level !== 'read' && level !== 'write')
            ) {
              throw new GitHubError(422, 'The permissions requested are not granted to this installation.', {
                documentationUrl: DOCS.apps,
              });
            }
          }
          permissions = asked as Record<string, string>;
        }
        const { token, expiresAt } = ctx.auth.issueInstallationToken(installation.id);
        return {
          status: 201,
          body: { token, expires_at: iso(expiresAt), permissions, repository_selection: 'all' },
        };
      },
    },
    {
      method: 'GET',
      path: '/orgs/{org}/installation',
      access: 'app',
      handler: (req) => {
        const org = ctx.world.org(req.params.org ?? '');
        if (!org) throw notFound(DOCS.apps);
        return { status: 200, body: instJson(org.installationId) };
      },
    },
    {
      method: 'GET',
      path: '/repos/{owner}/{repo}/installation',
      access: 'app',
      handler: (req) => {
        const repo = ctx.world.repo(req.params.owner ?? '', req.params.repo ?? '', ctx.now());
        if (!repo) throw notFound(DOCS.apps);
        return { status: 200, body: instJson(repo.owner.installationId) };
      },
    },
    {
      method: 'GET',
      path: '/app/hook/deliveries',
      access: 'app',
      handler: (req) => {
        const { perPage } = pageParams(req.query);
        const status = req.query.status;
        if (status !== undefined && status !== 'success' && status !== 'failure') {
          throw new GitHubError(422, 'Validation Failed: status must be success or failure', {
            documentationUrl: DOCS.deliveries,
          });
        }
        let beforeId: number | undefined;
        if (req.query.cursor !== undefined) {
          const m = /^v1_(\d+)$/.exec(req.query.cursor);
          if (!m)
            throw new GitHubError(400, 'Bad Request: invalid cursor', { documentationUrl: DOCS.deliveries });
          beforeId = Number(m[1]);
        }
        const items = ctx.webhooks.list({ limit: perPage, beforeId, status });
        const headers: Record<string, string> = {};
        const lastItem = items.at(-1);
        if (
          items.length === perPage &&
          lastItem &&
          ctx.webhooks.list({ limit: 1, beforeId: lastItem.id, status }).length > 0
        ) {
          const next = new URL(req.url, ctx.urls.web);
          next.searchParams.set('per_page', String(perPage));
          next.searchParams.set('cursor', `v1_${lastItem.id}`);
          headers.link = `<${next.toString()}>; rel="next"`;
        }
        return { status: 200, body: items.map(deliveryItem), headers };
      },
    },
    {
      method: 'GET',
      path: '/app/hook/deliveries/{delivery_id}',
      access: 'app',
      handler: (req) => {
        const record = /^\d+$/.test(req.params.delivery_id ?? '')
          ? ctx.webhooks.get(Number(req.params.delivery_id))
          : undefined;
        if (!record) throw notFound(DOCS.deliveries);
        return { status: 200, body: deliveryDetail(record) };
      },
    },
    {
      method: 'POST',
      path: '/app/hook/deliveries/{delivery_id}/attempts',
      access: 'app',
      handler: (req) => {
        const id = /^\d+$/.test(req.params.delivery_id ?? '') ? Number(req.params.delivery_id) : NaN;
        if (!ctx.webhooks.get(id)) throw notFound(DOCS.deliveries);
        if (!ctx.webhooks.redeliver(id)) {
          throw new GitHubError(422, 'Validation Failed: the App has no webhook URL', {
            documentationUrl: DOCS.deliveries,
          });
        }
        return { status: 202, body: {} };
      },
    },
    {
      method: 'GET',
      path: '/rate_limit',
      access: 'any',
      free: true,
      handler: (req) => {
        const core = ctx.limiter.bucket(req.identity);
        const reset = Math.floor(core.resetAt / 1000);
        const rate = {
          limit: core.limit,
          remaining: Math.max(0, core.limit - core.used),
          reset,
          used: core.used,
        };
        const fixed = (limit: number) => ({ limit, remaining: limit, reset, used: 0 });
        return {
          status: 200,
          body: {
            resources: {
              core: rate,
              search: fixed(30),
              graphql: fixed(core.limit),
              integration_manifest: fixed(5000),
              actions_runner_registration: fixed(10000),
              code_search: fixed(10),
            },
            rate,
          },
        };
      },
    },
  ];
}
