/**
 * Resolves the organization, repository or enterprise a request names and checks that the caller may act on it:
 * an installation only on its own organization and with the App permission the endpoint needs (as GitHub
 * answers 403 "Resource not accessible by integration"); enterprise endpoints only with the classic PAT.
 */
import type { Identity } from '../auth.js';
import type { SimContext } from '../context.js';
import { notAccessibleByIntegration, notFound } from '../errors.js';
import type { Org, Repo, ScopeRef } from '../model.js';

export type Permission = 'organization_self_hosted_runners' | 'administration' | 'actions';

function checkPermission(
  ctx: SimContext,
  identity: Identity,
  org: Org,
  permission: Permission,
  write: boolean,
  docs: string,
): void {
  if (identity.kind !== 'installation') return;
  if (identity.installation.account.id !== org.id) throw notAccessibleByIntegration(docs);
  const granted = ctx.app.permissions[permission];
  if (!granted || (write && granted !== 'write')) throw notAccessibleByIntegration(docs);
}

export function resolveOrg(
  ctx: SimContext,
  identity: Identity,
  login: string,
  permission: Permission,
  write: boolean,
  docs: string,
): Org {
  const org = ctx.world.org(login);
  if (!org) throw notFound(docs);
  checkPermission(ctx, identity, org, permission, write, docs);
  return org;
}

export function resolveRepo(
  ctx: SimContext,
  identity: Identity,
  owner: string,
  name: string,
  permission: Permission,
  write: boolean,
  docs: string,
): Repo {
  const repo = ctx.world.repo(owner, name, ctx.now());
  if (!repo) throw notFound(docs);
  checkPermission(ctx, identity, repo.owner, permission, write, docs);
  return repo;
}

export function resolveEnterprise(ctx: SimContext, identity: Identity, slug: string, docs: string): string {
  if (slug.toLowerCase() !== ctx.world.enterprise.slug.toLowerCase()) throw notFound(docs);
  // Enterprise runner endpoints need a classic PAT; GitHub Apps cannot act on an enterprise.
  if (identity.kind !== 'pat') throw notAccessibleByIntegration(docs);
  return ctx.world.enterprise.slug;
}

export type ScopeKind = ScopeRef['kind'];

/** The scope of a runner route from its path parameters, after the access checks. */
export function resolveScope(
  ctx: SimContext,
  identity: Identity,
  kind: ScopeKind,
  params: Record<string, string>,
  write: boolean,
  docs: string,
): ScopeRef {
  switch (kind) {
    case 'org': {
      const org = resolveOrg(
        ctx,
        identity,
        params.org ?? '',
        'organization_self_hosted_runners',
        write,
        docs,
      );
      return { kind: 'org', org: org.login };
    }
    case 'repo': {
      const repo = resolveRepo(
        ctx,
        identity,
        params.owner ?? '',
        params.repo ?? '',
        'administration',
        write,
        docs,
      );
      return { kind: 'repo', owner: repo.owner.login, repo: repo.name };
    }
    case 'enterprise':
      return {
        kind: 'enterprise',
        enterprise: resolveEnterprise(ctx, identity, params.enterprise ?? '', docs),
      };
  }
}
