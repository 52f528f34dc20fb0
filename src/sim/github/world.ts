/**
 * Organizations, repositories, installations and runner groups. Organizations are configured at start (each with
 * the App installed); repositories of a known organization are created the first time anything names them.
 */
import { nodeId } from './ids.js';
import type { Installation, Org, Repo, RunnerGroup } from './model.js';

export class World {
  readonly enterprise: { readonly slug: string; readonly id: number; readonly nodeId: string };
  #orgs = new Map<string, Org>();
  #installations = new Map<number, Installation>();
  #repos = new Map<string, Repo>();
  #reposById = new Map<number, Repo>();
  #groups: RunnerGroup[];
  #labelIds = new Map<string, number>();
  #nextRepoId = 500_000_001;

  constructor(orgs: readonly string[], enterprise: string, groupNames: readonly string[], now: number) {
    this.enterprise = { slug: enterprise, id: 9001, nodeId: nodeId('Enterprise', 9001) };
    orgs.forEach((login, i) => {
      const id = 38_000_001 + i;
      const org: Org = {
        login,
        id,
        nodeId: nodeId('Organization', id),
        installationId: 40_000_001 + i,
        createdAt: now,
      };
      this.#orgs.set(login.toLowerCase(), org);
      this.#installations.set(org.installationId, { id: org.installationId, account: org, createdAt: now });
    });
    const names = ['Default', ...groupNames.filter((n) => n.toLowerCase() !== 'default')];
    this.#groups = names.map((name, i) => ({ id: i + 1, name, isDefault: i === 0 }));
  }

  org(login: string): Org | undefined {
    return this.#orgs.get(login.toLowerCase());
  }

  orgs(): Org[] {
    return [...this.#orgs.values()];
  }

  installation(id: number): Installation | undefined {
    return this.#installations.get(id);
  }

  installations(): Installation[] {
    return [...this.#installations.values()];
  }

  /** The repository, created on first use when its owner is a known organization. */
  repo(owner: string, name: string, now: number): Repo | undefined {
    const key = `${owner.toLowerCase()}/${name.toLowerCase()}`;
    const existing = this.#repos.get(key);
    if (existing) return existing;
    const org = this.org(owner);
    if (!org || !isValidRepoName(name)) return undefined;
    const id = this.#nextRepoId++;
    const repo: Repo = {
      id,
      name,
      owner: org,
      fullName: `${org.login}/${name}`,
      nodeId: nodeId('Repository', id),
      createdAt: now,
      runNumber: 0,
    };
    this.#repos.set(key, repo);
    this.#reposById.set(id, repo);
    return repo;
  }

  repoById(id: number): Repo | undefined {
    return this.#reposById.get(id);
  }

  /** Runner groups. Organizations, the enterprise and repositories (which only have `Default`) share the ids. */
  groups(): readonly RunnerGroup[] {
    return this.#groups;
  }

  group(id: number): RunnerGroup | undefined {
    return this.#groups.find((g) => g.id === id);
  }

  /** GitHub gives each label name a numeric id; the same name keeps its id. */
  labelId(name: string): number {
    const key = name.toLowerCase();
    let id = this.#labelIds.get(key);
    if (id === undefined) {
      id = this.#labelIds.size + 1;
      this.#labelIds.set(key, id);
    }
    return id;
  }
}

/** GitHub repository names: letters, digits, `.`, `-`, `_`; at most 100 characters. */
export function isValidRepoName(name: string): boolean {
  return /^[A-Za-z0-9._-]{1,100}$/.test(name) && name !== '.' && name !== '..';
}
