/**
 * A CPU profile of this process (the inspector's sampling profiler, what `node --cpu-prof` records), reduced to
 * the functions with the most self time. The benchmarks that run the controller in-process use it to say where its
 * CPU goes; the full profile is written beside the results for a closer look (Chrome DevTools, speedscope).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

interface ProfileNode {
  readonly id: number;
  readonly children?: number[];
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly hitCount?: number;
}
export interface Profile {
  readonly nodes: ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: number[];
}

export interface ProfileEntry {
  /** function (file:line), or a module (file, npm package, node internals), relative to the repository */
  readonly where: string;
  /** Share of the busy samples (idle left out), %. */
  readonly selfPct: number;
}

export interface ProfileSummary {
  /** Functions with the most self time. */
  readonly entries: ProfileEntry[];
  /** Self time summed by file, npm package or Node internals. */
  readonly modules: ProfileEntry[];
  /** Functions with the most time including what they call (src/ and bench/ frames only). */
  readonly inclusive: ProfileEntry[];
  /** Share of all samples that were idle, %; the busy shares above are of the rest. */
  readonly idlePct: number;
  /** Share of the busy samples in the garbage collector, %. */
  readonly gcPct: number;
  /** Busy samples times the sampling interval, ms: main-thread time the profile saw (CPU and blocking calls). */
  readonly busyMs: number;
  /** Busy samples by what the controller was doing (ACTIVITIES: the first rule matching the call stack). */
  readonly activities: ProfileEntry[];
  /** How long the profile ran, ms. */
  readonly wallMs: number;
}

/**
 * What a busy sample was doing, by its call stack (frames "function url", root first, joined by newlines): the
 * first rule that matches names it. Calls out continue in callbacks with no frame of ours (undici's, the socket's),
 * which the I/O rules name by Node's own modules.
 */
export const ACTIVITIES: readonly { readonly name: string; readonly stack: RegExp }[] = [
  { name: 'garbage collection', stack: /^\(garbage collector\) $/m },
  { name: 'reconciler passes: snapshot', stack: /^#pass .*\n(.*\n)*buildSnapshot /m },
  { name: 'reconciler passes: planning', stack: /^#pass .*\n(.*\n)*planScaleSet /m },
  {
    name: 'reconciler passes: recording marks and new runners',
    stack: /^#pass .*\n(.*\n)*execute .*executor/m,
  },
  { name: 'reconciler passes: other', stack: /^#(pass|drain) .*reconciler/m },
  {
    name: 'webhook intake (HTTP server, signature, parsing, store commit)',
    stack: /src\/server\/|node_modules\/fastify\/|node:_http_server|parserOnHeadersComplete|onParserExecute/,
  },
  { name: 'dashboard chart samples', stack: /src\/dashboard\// },
  { name: 'provider calls (the sim provider: HTTP to the simulator)', stack: /src\/providers\// },
  {
    name: 'GitHub calls (octokit, JIT configs, lists, delivery scans)',
    stack: /src\/github\/|@octokit\/|bottleneck|universal-github-app-jwt/,
  },
  { name: 'executor: store writes and bookkeeping', stack: /src\/core\/executor/ },
  { name: 'the benchmark itself (timing hooks, polling)', stack: /(^|\/)bench\// },
  { name: 'outgoing HTTP continued (undici, no frame of ours)', stack: /undici/ },
  { name: 'sockets and streams (no frame of ours)', stack: /node:net|node:internal\/stream|node:_http/ },
  { name: 'SQLite and other store work', stack: /src\/store\// },
  { name: 'other controller code', stack: /src\// },
];

export class CpuProfiler {
  readonly #session = new Session();
  readonly #intervalUs = 1000;

  async start(): Promise<void> {
    this.#session.connect();
    await this.#session.post('Profiler.enable');
    await this.#session.post('Profiler.setSamplingInterval', { interval: this.#intervalUs });
    await this.#session.post('Profiler.start');
  }

  /** Stops, writes the profile to `file` and sums it up (shares of the busy samples). */
  async stop(file: string, top = 12): Promise<ProfileSummary> {
    const { profile } = (await this.#session.post('Profiler.stop')) as { profile: Profile };
    this.#session.disconnect();
    writeFileSync(file, JSON.stringify(profile));
    return summarize(profile, top);
  }
}

/** Sums a profile up: shares of the busy samples. */
export function summarize(profile: Profile, top = 12): ProfileSummary {
  {
    const root = process.cwd();
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const where = (n: ProfileNode): { fn: string; mod: string; ours: boolean } => {
      const f = n.callFrame;
      const url = f.url.replace(/^file:\/\//, '').replace(`${root}/`, '');
      const name = f.functionName || '(anonymous)';
      const nm = url.split('node_modules/');
      const mod =
        url === ''
          ? name
          : nm.length > 1
            ? nm[nm.length - 1]!.split('/')
                .slice(0, nm[nm.length - 1]!.startsWith('@') ? 2 : 1)
                .join('/')
            : url.startsWith('node:')
              ? 'node internals'
              : url;
      return {
        fn: `${name}${url ? ` (${url}:${f.lineNumber + 1})` : ''}`,
        mod,
        ours: /^(src|bench)\//.test(url),
      };
    };
    let total = 0;
    let idle = 0;
    let gc = 0;
    const self = new Map<string, number>();
    const modules = new Map<string, number>();
    const inclusive = new Map<string, number>();
    const activities = new Map<string, number>();
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      if (hits === 0) continue;
      total += hits;
      const name = node.callFrame.functionName;
      if (name === '(idle)') {
        idle += hits;
        continue;
      }
      if (name === '(garbage collector)') gc += hits;
      const w = where(node);
      self.set(w.fn, (self.get(w.fn) ?? 0) + hits);
      modules.set(w.mod, (modules.get(w.mod) ?? 0) + hits);
      const frames: string[] = [];
      for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
        const f = byId.get(id)!.callFrame;
        frames.push(
          `${f.functionName || '(anonymous)'} ${f.url.replace(/^file:\/\//, '').replace(`${root}/`, '')}`,
        );
      }
      const stack = frames.reverse().join('\n');
      const activity =
        ACTIVITIES.find((a) => a.stack.test(stack))?.name ?? 'other (timers, promises, program)';
      activities.set(activity, (activities.get(activity) ?? 0) + hits);
      const seen = new Set<string>();
      for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
        const a = where(byId.get(id)!);
        if (a.ours && !seen.has(a.fn)) {
          seen.add(a.fn);
          inclusive.set(a.fn, (inclusive.get(a.fn) ?? 0) + hits);
        }
      }
    }
    const busy = Math.max(1, total - idle);
    const pct = (n: number): number => Math.round((n / busy) * 1000) / 10;
    const topOf = (m: Map<string, number>): ProfileEntry[] =>
      [...m]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([w, n]) => ({ where: w, selfPct: pct(n) }));
    return {
      entries: topOf(self),
      modules: topOf(modules),
      inclusive: topOf(inclusive),
      idlePct: Math.round((idle / Math.max(1, total)) * 1000) / 10,
      gcPct: pct(gc),
      activities: [...activities]
        .sort((a, b) => b[1] - a[1])
        .map(([w, n]) => ({ where: w, selfPct: pct(n) })),
      wallMs: Math.round((profile.endTime - profile.startTime) / 1000),
      busyMs: Math.round((busy * (profile.endTime - profile.startTime)) / Math.max(1, total) / 1000),
    };
  }
}
