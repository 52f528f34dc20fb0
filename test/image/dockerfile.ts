/**
 * deploy/Dockerfile, carried out without a container engine: its instructions are parsed and performed in a clean
 * directory per stage (COPY from the build context, honouring .dockerignore, or from an earlier stage; WORKDIR; ENV;
 * RUN with /bin/sh in the stage's working directory), so the image test runs the steps the Dockerfile runs, not a
 * copy of them. What cannot run here is explicit: a RUN of `apt-get install` (the base image's system packages) is
 * not run but its packages' commands must exist on this machine, and the image's node is this machine's node (the
 * test checks that the pinned base image carries the same version), so paths of the node installation (`/usr/local`
 * in the official image) map to this node's prefix.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export interface Instruction {
  readonly keyword: string;
  readonly args: string;
  /** 1-based line of the instruction's first line. */
  readonly line: number;
}

/** Instructions with continuation lines joined; comments, blank lines and parser directives dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (/^\s*(#.*)?$/.test(line)) continue;
    const start = i + 1;
    while (line.trimEnd().endsWith('\\') && i + 1 < lines.length) {
      line = `${line.trimEnd().slice(0, -1)} ${lines[++i]!.trim()}`;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match) throw new Error(`Dockerfile line ${start}: cannot parse ${JSON.stringify(line)}`);
    out.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim(), line: start });
  }
  return out;
}

export interface Stage {
  readonly name: string;
  readonly image: string;
  /** Where this stage's filesystem lives on this machine. */
  readonly root: string;
  workdir: string;
  readonly env: Record<string, string>;
  user?: string;
  entrypoint?: string[];
  cmd?: string[];
  healthcheck?: string[];
  readonly exposed: number[];
  /** apt-get packages the stage installs (not run here; checked to be present). */
  readonly systemPackages: string[];
}

export interface BuildOptions {
  readonly dockerfile: string;
  /** The build context (the repository root). */
  readonly context: string;
  /** Empty directory the stages are built in. */
  readonly workDir: string;
  /** Image paths that are this machine's paths in disguise: `/usr/local` (node's prefix in node images). */
  readonly pathMap: Readonly<Record<string, string>>;
  /** Environment of every RUN besides the stage's ENV (PATH, HOME, npm's cache). */
  readonly runEnv: Readonly<Record<string, string>>;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface BuildResult {
  readonly stages: readonly Stage[];
  readonly final: Stage;
  /** Global ARG values (defaults). */
  readonly args: Readonly<Record<string, string>>;
}

/** Commands that provide each Debian build package the Dockerfile installs. */
const PACKAGE_COMMANDS: Readonly<Record<string, string>> = { python3: 'python3', make: 'make', 'g++': 'g++' };

function ignoreMatcher(context: string): (relative: string) => boolean {
  const file = path.join(context, '.dockerignore');
  if (!existsSync(file)) return () => false;
  const rules = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
      let source = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i]!;
        if (pattern.startsWith('**/', i)) {
          source += '(?:.*/)?';
          i += 2;
        } else if (pattern.startsWith('**', i)) {
          source += '.*';
          i += 1;
        } else if (c === '*') source += '[^/]*';
        else if (c === '?') source += '[^/]';
        else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, regex: new RegExp(`^${source}(/.*)?$`) };
    });
  return (relative) => {
    let ignored = false;
    for (const rule of rules) if (rule.regex.test(relative)) ignored = !rule.negate;
    return ignored;
  };
}

function copyFiltered(from: string, to: string, relative: string, ignored: (rel: string) => boolean): void {
  if (statSync(from).isDirectory()) {
    mkdirSync(to, { recursive: true });
    for (const entry of readdirSync(from)) {
      const rel = relative === '' ? entry : `${relative}/${entry}`;
      const source = path.join(from, entry);
      // A directory is entered even when it matches: a later `!` rule may bring back files inside it.
      if (!statSync(source).isDirectory() && ignored(rel)) continue;
      copyFiltered(source, path.join(to, entry), rel, ignored);
    }
    return;
  }
  if (ignored(relative)) return;
  mkdirSync(path.dirname(to), { recursive: true });
  cpSync(from, to, { dereference: true });
}

function jsonArray(args: string, where: string): string[] {
  const value = JSON.parse(args) as unknown;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
    throw new Error(`${where}: expected the exec form ["...", ...]`);
  return value;
}

function run(
  command: string,
  cwd: string,
  env: Record<string, string>,
  options: BuildOptions,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const abort = () => child.kill('SIGKILL');
    options.signal?.addEventListener('abort', abort, { once: true });
    child.once('exit', (code, signal) => {
      options.signal?.removeEventListener('abort', abort);
      if (code === 0) resolve();
      else reject(new Error(`RUN ${command} failed (${code ?? signal}):\n${tail}`));
    });
  });
}

/** Performs the Dockerfile's stages in order; the last stage is the image. */
export async function buildDockerfile(options: BuildOptions): Promise<BuildResult> {
  const instructions = parseDockerfile(readFileSync(options.dockerfile, 'utf8'));
  const ignored = ignoreMatcher(options.context);
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  let stage: Stage | undefined;
  const mapPath = (value: string) => {
    for (const [image, host] of Object.entries(options.pathMap)) if (value === image) return host;
    return value;
  };
  const inStage = (p: string) => path.join(stage!.root, p);
  const resolveIn = (p: string) => (p.startsWith('/') ? p : path.posix.join(stage!.workdir, p));
  const substitute = (text: string) =>
    text.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (all, a: string, b: string) => {
        const name = a ?? b;
        return stage?.env[name] ?? args[name] ?? all;
      },
    );

  for (const ins of instructions) {
    const where = `Dockerfile line ${ins.line} (${ins.keyword})`;
    if (ins.keyword === 'ARG') {
      const [name, value] = ins.args.split('=', 2) as [string, string | undefined];
      if (stage) throw new Error(`${where}: ARG inside a stage is not handled by the image test`);
      args[name] = value ?? '';
      continue;
    }
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`${where}: cannot parse`);
      const image = substitute(m[1]!);
      const known = stages.find((s) => s.name === image);
      if (known) throw new Error(`${where}: FROM an earlier stage is not handled by the image test`);
      const name = m[2] ?? `stage-${stages.length}`;
      const root = path.join(options.workDir, name);
      mkdirSync(root, { recursive: true });
      stage = { name, image, root, workdir: '/', env: {}, exposed: [], systemPackages: [] };
      stages.push(stage);
      options.log?.(`FROM ${image} AS ${name}`);
      continue;
    }
    if (!stage) throw new Error(`${where}: before the first FROM`);
    switch (ins.keyword) {
      case 'WORKDIR':
        stage.workdir = resolveIn(substitute(ins.args));
        mkdirSync(inStage(stage.workdir), { recursive: true });
        break;
      case 'ENV': {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=|\s+)(.*)$/.exec(ins.args);
        if (!m) throw new Error(`${where}: expected NAME=value`);
        stage.env[m[1]!] = substitute(m[2]!.replace(/^"(.*)"$/, '$1'));
        break;
      }
      case 'COPY': {
        const words = ins.args.split(/\s+/);
        const flags = words.filter((w) => w.startsWith('--'));
        const paths = words.filter((w) => !w.startsWith('--'));
        const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
        const unknown = flags.filter((f) => !f.startsWith('--from=') && !f.startsWith('--chown='));
        if (unknown.length > 0) throw new Error(`${where}: flags ${unknown.join(' ')} are not handled`);
        if (paths.length < 2) throw new Error(`${where}: needs a source and a destination`);
        const dest = resolveIn(paths.at(-1)!);
        const sources = paths.slice(0, -1);
        const intoDir = paths.at(-1)!.endsWith('/') || sources.length > 1;
        for (const source of sources) {
          let hostSource: string;
          let filter = ignored;
          if (from !== undefined) {
            const origin = stages.find((s) => s.name === from);
            if (!origin) throw new Error(`${where}: no stage named ${from}`);
            hostSource = path.join(origin.root, source);
            filter = () => false;
          } else {
            hostSource = path.join(options.context, source);
            if (ignored(source.replace(/^\.\//, '')))
              throw new Error(`${where}: ${source} is in .dockerignore`);
          }
          if (!existsSync(hostSource)) throw new Error(`${where}: ${source} does not exist`);
          const isDir = statSync(hostSource).isDirectory();
          const target = isDir || !intoDir ? inStage(dest) : path.join(inStage(dest), path.basename(source));
          copyFiltered(hostSource, target, from === undefined ? source.replace(/^\.\/?/, '') : '', filter);
        }
        options.log?.(`COPY ${ins.args}`);
        break;
      }
      case 'RUN': {
        const command = ins.args;
        if (/^apt-get\s/.test(command)) {
          const install = /apt-get install\s+(.*?)(?:&&|$)/.exec(command)?.[1] ?? '';
          const packages = install.split(/\s+/).filter((w) => w !== '' && !w.startsWith('-'));
          for (const pkg of packages) {
            const cmd = PACKAGE_COMMANDS[pkg];
            if (cmd === undefined)
              throw new Error(`${where}: the image test does not know the package ${pkg}`);
            execFileSync('/bin/sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
            stage.systemPackages.push(pkg);
          }
          options.log?.(`RUN (system packages present here: ${packages.join(' ')})`);
          break;
        }
        if (command.startsWith('[')) throw new Error(`${where}: the exec form of RUN is not handled`);
        const env: Record<string, string> = { ...options.runEnv };
        for (const [name, value] of Object.entries(stage.env)) env[name] = mapPath(value);
        options.log?.(`RUN ${command}`);
        await run(command, inStage(stage.workdir), env, options);
        break;
      }
      case 'USER':
        stage.user = ins.args;
        break;
      case 'EXPOSE':
        stage.exposed.push(...ins.args.split(/\s+/).map((p) => Number(p.split('/')[0])));
        break;
      case 'ENTRYPOINT':
        stage.entrypoint = jsonArray(ins.args, where);
        break;
      case 'CMD':
        stage.cmd = jsonArray(ins.args, where);
        break;
      case 'HEALTHCHECK': {
        const m = /\bCMD\s+(\[.*\])$/.exec(ins.args);
        if (!m) throw new Error(`${where}: expected HEALTHCHECK ... CMD [exec form]`);
        stage.healthcheck = jsonArray(m[1]!, where);
        break;
      }
      default:
        throw new Error(
          `${where}: the image test does not handle ${ins.keyword}; teach test/image/dockerfile.ts`,
        );
    }
  }
  if (!stage) throw new Error('the Dockerfile has no FROM');
  return { stages, final: stage, args };
}

export interface ImageConfig {
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  readonly workingDir: string;
  readonly env: Readonly<Record<string, string>>;
  readonly user?: string;
}

/** The final stage's runtime settings (ENTRYPOINT, CMD, WORKDIR, ENV, USER), read without building anything. */
export function imageConfig(dockerfile: string): ImageConfig {
  const instructions = parseDockerfile(readFileSync(dockerfile, 'utf8'));
  const lastFrom = instructions.map((i) => i.keyword).lastIndexOf('FROM');
  let workingDir = '/';
  const env: Record<string, string> = {};
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  let user: string | undefined;
  for (const ins of instructions.slice(lastFrom + 1)) {
    const where = `Dockerfile line ${ins.line}`;
    if (ins.keyword === 'WORKDIR') workingDir = path.posix.resolve(workingDir, ins.args);
    else if (ins.keyword === 'ENV') {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=|\s+)(.*)$/.exec(ins.args);
      if (m) env[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
    } else if (ins.keyword === 'ENTRYPOINT') entrypoint = jsonArray(ins.args, where);
    else if (ins.keyword === 'CMD') cmd = jsonArray(ins.args, where);
    else if (ins.keyword === 'USER') user = ins.args;
  }
  return { entrypoint, cmd, workingDir, env, ...(user !== undefined ? { user } : {}) };
}
