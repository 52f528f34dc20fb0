/** Runner groups of an organization and of the enterprise (list, get). `Default` has id 1. */
import type { SimContext } from '../context.js';
import { DOCS, notFound } from '../errors.js';
import type { RunnerGroup } from '../model.js';
import type { RestRequest, RestRoute } from '../rest.js';
import { paginate } from '../rest.js';
import { resolveEnterprise, resolveOrg } from './scope.js';

const docs = DOCS.runnerGroups;

function orgGroupJson(ctx: SimContext, org: string, g: RunnerGroup) {
  const base = `${ctx.urls.api}/orgs/${org}/actions/runner-groups/${g.id}`;
  return {
    id: g.id,
    name: g.name,
    visibility: 'all',
    default: g.isDefault,
    runners_url: `${base}/runners`,
    inherited: false,
    allows_public_repositories: false,
    restricted_to_workflows: false,
    selected_workflows: [] as string[],
    workflow_restrictions_read_only: false,
  };
}

function enterpriseGroupJson(ctx: SimContext, enterprise: string, g: RunnerGroup) {
  const base = `${ctx.urls.api}/enterprises/${enterprise}/actions/runner-groups/${g.id}`;
  return {
    id: g.id,
    name: g.name,
    visibility: 'all',
    default: g.isDefault,
    selected_organizations_url: `${base}/organizations`,
    runners_url: `${base}/runners`,
    allows_public_repositories: false,
    restricted_to_workflows: false,
    selected_workflows: [] as string[],
    workflow_restrictions_read_only: false,
  };
}

function groupById(ctx: SimContext, raw: string | undefined): RunnerGroup {
  const group = /^\d+$/.test(raw ?? '') ? ctx.world.group(Number(raw)) : undefined;
  if (!group) throw notFound(docs);
  return group;
}

/** Checks the caller's access to the organization or enterprise a request names; returns how a group shows there. */
type GroupJsonFor = (ctx: SimContext, req: RestRequest) => (g: RunnerGroup) => unknown;

const LEVELS: readonly { readonly path: string; readonly groupJsonFor: GroupJsonFor }[] = [
  {
    path: '/orgs/{org}/actions/runner-groups',
    groupJsonFor: (ctx, req) => {
      const org = resolveOrg(
        ctx,
        req.identity,
        req.params.org ?? '',
        'organization_self_hosted_runners',
        false,
        docs,
      );
      return (g) => orgGroupJson(ctx, org.login, g);
    },
  },
  {
    path: '/enterprises/{enterprise}/actions/runner-groups',
    groupJsonFor: (ctx, req) => {
      const enterprise = resolveEnterprise(ctx, req.identity, req.params.enterprise ?? '', docs);
      return (g) => enterpriseGroupJson(ctx, enterprise, g);
    },
  },
];

export function runnerGroupRoutes(ctx: SimContext): RestRoute[] {
  return LEVELS.flatMap(({ path, groupJsonFor }): RestRoute[] => [
    {
      method: 'GET',
      path,
      access: 'installation',
      handler: (req) => {
        const json = groupJsonFor(ctx, req);
        const all = ctx.world.groups();
        const page = paginate(ctx, req, all);
        return {
          status: 200,
          body: { total_count: all.length, runner_groups: page.items.map(json) },
          headers: page.headers,
        };
      },
    },
    {
      method: 'GET',
      path: `${path}/{runner_group_id}`,
      access: 'installation',
      handler: (req) => {
        const json = groupJsonFor(ctx, req);
        return { status: 200, body: json(groupById(ctx, req.params.runner_group_id)) };
      },
    },
  ]);
}
