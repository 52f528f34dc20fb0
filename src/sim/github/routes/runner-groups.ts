/** Runner groups of an organization and of the enterprise (list, get). `Default` has id 1. */
import type { SimContext } from '../context.js';
import { DOCS, notFound } from '../errors.js';
import type { RunnerGroup } from '../model.js';
import type { RestRoute } from '../rest.js';
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

export function runnerGroupRoutes(ctx: SimContext): RestRoute[] {
  return [
    {
      method: 'GET',
      path: '/orgs/{org}/actions/runner-groups',
      access: 'installation',
      handler: (req) => {
        const org = resolveOrg(
          ctx,
          req.identity,
          req.params.org ?? '',
          'organization_self_hosted_runners',
          false,
          docs,
        );
        const all = ctx.world.groups();
        const page = paginate(ctx, req, all);
        return {
          status: 200,
          body: {
            total_count: all.length,
            runner_groups: page.items.map((g) => orgGroupJson(ctx, org.login, g)),
          },
          headers: page.headers,
        };
      },
    },
    {
      method: 'GET',
      path: '/orgs/{org}/actions/runner-groups/{runner_group_id}',
      access: 'installation',
      handler: (req) => {
        const org = resolveOrg(
          ctx,
          req.identity,
          req.params.org ?? '',
          'organization_self_hosted_runners',
          false,
          docs,
        );
        return {
          status: 200,
          body: orgGroupJson(ctx, org.login, groupById(ctx, req.params.runner_group_id)),
        };
      },
    },
    {
      method: 'GET',
      path: '/enterprises/{enterprise}/actions/runner-groups',
      access: 'installation',
      handler: (req) => {
        const enterprise = resolveEnterprise(ctx, req.identity, req.params.enterprise ?? '', docs);
        const all = ctx.world.groups();
        const page = paginate(ctx, req, all);
        return {
          status: 200,
          body: {
            total_count: all.length,
            runner_groups: page.items.map((g) => enterpriseGroupJson(ctx, enterprise, g)),
          },
          headers: page.headers,
        };
      },
    },
    {
      method: 'GET',
      path: '/enterprises/{enterprise}/actions/runner-groups/{runner_group_id}',
      access: 'installation',
      handler: (req) => {
        const enterprise = resolveEnterprise(ctx, req.identity, req.params.enterprise ?? '', docs);
        return {
          status: 200,
          body: enterpriseGroupJson(ctx, enterprise, groupById(ctx, req.params.runner_group_id)),
        };
      },
    },
  ];
}
