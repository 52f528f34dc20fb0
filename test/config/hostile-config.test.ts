/**
 * Hostile or mistaken configurations as a user writes them, through real files: `loadConfig`, and the built
 * `runner-fleet validate` (run `npm run build` first). Each must end in problems with FILE:LINE:COL, quickly,
 * never in a hang, a busy loop or a stack overflow.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatProblem, loadConfig } from '../../src/config/index.js';
import { formatDuration, TIMER_MAX_MS } from '../../src/lib/duration.js';

const dir = mkdtempSync(join(tmpdir(), 'rf-hostile-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HOOK = 'a-webhook-secret-of-sane-length';

function file(name: string, lines: readonly string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function fleet(set: readonly string[] = [], top: readonly string[] = []): string[] {
  return [
    'github: { auth: { token: ghp_x } }',
    'webhook: { secret: "${env:HOOK}" }',
    ...top,
    'scaleSets:',
    '  - name: a',
    '    scope: { org: o }',
    '    labels: [x]',
    '    provider: { kind: process, command: run.sh }',
    ...(set.some((line) => line.startsWith('    max:')) ? [] : ['    max: 1']),
    ...set,
  ];
}

function problems(path: string, env: Record<string, string> = { HOOK }): string[] {
  const result = loadConfig(path, { env });
  return result.ok ? [] : result.problems.map(formatProblem);
}

function validate(path: string, env: Record<string, string> = { HOOK }) {
  const result = spawnSync(process.execPath, ['dist/cli/main.js', 'validate', '--config', path], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('bounds on durations and sizes', () => {
  it('refuses a duration a timer cannot hold, naming the bound (30d resync was a 1 ms loop)', () => {
    const path = file('resync.yaml', fleet([], ['controller: { resyncInterval: 30d }']));
    expect(problems(path)).toEqual([
      `${path}:3:31 controller.resyncInterval: must be at most 1d (86400000 ms)`,
    ]);
    expect(TIMER_MAX_MS).toBe(2 ** 31 - 1);
  });

  it.each([
    ['controller: { orphanGracePeriod: 8d }', 'controller.orphanGracePeriod', formatDuration(7 * 86_400_000)],
    ['controller: { failureBackoff: 7h }', 'controller.failureBackoff', '6h'],
    ['controller: { resyncInterval: 99999999999999999999999d }', 'controller.resyncInterval', '1d'],
    ['controller: { resyncInterval: 1e400 }', 'controller.resyncInterval', 'e.g. 500ms'],
  ])('%s', (line, field, bound) => {
    const path = file('duration.yaml', fleet([], [line]));
    const [problem] = problems(path);
    expect(problem).toContain(`${path}:3:`);
    expect(problem).toContain(field);
    expect(problem).toContain(bound.startsWith('e.g.') ? bound : `at most ${bound}`);
  });

  it('refuses max: 1e12, and bounds minIdle, priority, port, concurrency, labels and timeouts', () => {
    const path = file(
      'sizes.yaml',
      fleet(
        [
          '    max: 1e12',
          '    minIdle: 20000',
          '    priority: 1e9',
          '    bootstrapTimeout: 2d',
          '    idleTimeout: 8d',
        ],
        ['server: { port: 70000 }', 'controller: { concurrency: 1000000 }'],
      ),
    );
    const found = problems(path);
    const expected = [
      'server.port: must be a port number, 0 to 65535',
      'controller.concurrency: must be at most 1000',
      'scaleSets[0].max: must be at most 10000',
      'scaleSets[0].minIdle: must be at most 10000',
      'scaleSets[0].priority: must be between -1000000 and 1000000',
      'scaleSets[0].bootstrapTimeout: must be at most 1d',
      'scaleSets[0].idleTimeout: must be at most 7d',
    ];
    for (const message of expected)
      expect(
        found.some((p) => p.includes(message)),
        message,
      ).toBe(true);
    for (const problem of found) expect(problem).toMatch(new RegExp(`^${path}:\\d+:\\d+ `));
  });

  it('bounds the label list and each label', () => {
    const many = Array.from({ length: 101 }, (_, i) => `l${i}`).join(', ');
    const path = file(
      'labels.yaml',
      fleet([`    labels: [${many}]`]).filter((l) => l !== '    labels: [x]'),
    );
    expect(problems(path).join('\n')).toContain('at most 100 labels');
    const long = file(
      'long-label.yaml',
      fleet([`    labels: [${'l'.repeat(300)}]`]).filter((l) => l !== '    labels: [x]'),
    );
    expect(problems(long).join('\n')).toContain('must be at most 256 characters');
  });

  it('bounds provider durations and lists', () => {
    const path = file(
      'provider.yaml',
      fleet([]).map((line) =>
        line.includes('kind: process')
          ? '    provider: { kind: process, command: run.sh, stopGracePeriod: 2h }'
          : line,
      ),
    );
    expect(problems(path).join('\n')).toContain('stopGracePeriod: must be at most 1h');
  });
});

describe('${file:} reads are bounded', () => {
  it('refuses /dev/zero at once, at the reference', () => {
    const path = file(
      'zero.yaml',
      fleet().map((l) => l.replace('token: ghp_x', 'token: "${file:/dev/zero}"')),
    );
    const started = Date.now();
    expect(problems(path)).toEqual([
      `${path}:1:26 github.auth.token: cannot read file /dev/zero: not a regular file`,
    ]);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('refuses a FIFO without hanging, a directory, and a file over 1 MiB', () => {
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    writeFileSync(join(dir, 'big'), Buffer.alloc(1024 * 1024 + 1, 0x61));
    writeFileSync(join(dir, 'exact'), Buffer.alloc(1024 * 1024, 0x61));
    const at = (target: string) =>
      problems(
        file(
          'ref.yaml',
          fleet().map((l) => l.replace('token: ghp_x', `token: "\${file:${target}}"`)),
        ),
      );
    expect(at('fifo')[0]).toMatch(/github\.auth\.token: cannot read file fifo: not a regular file$/);
    expect(at(dir)[0]).toMatch(/: is a directory$/);
    expect(at('big')[0]).toMatch(/cannot read file big: larger than 1 MiB$/);
    // Exactly the limit is fine for the read (the token then fails its own format check, which is not a read).
    expect(at('exact').join('\n')).not.toContain('larger than');
  });

  it('refuses a config file that is not a regular file', () => {
    expect(problems('/dev/zero')).toEqual(['/dev/zero: cannot read the config file: not a regular file']);
  });
});

describe('deep nesting', () => {
  it('reports 10,000-deep YAML as a problem with a position, not a stack overflow', () => {
    const flow = file('deep-flow.yaml', [`github: ${'['.repeat(10_000)}${']'.repeat(10_000)}`]);
    expect(problems(flow)).toEqual([`${flow}:1:72: nested deeper than 64 levels of mappings and sequences`]);
    const block = file(
      'deep-block.yaml',
      // 2,000 levels of block indentation (10,000 would be a 50 MB file, refused for its size).
      Array.from({ length: 2_000 }, (_, i) => `${' '.repeat(i)}k:`),
    );
    const [problem] = problems(block);
    expect(problem).toBe(`${block}:65:65: nested deeper than 64 levels of mappings and sequences`);
  });
});

describe('runner-fleet validate', () => {
  it('prints the bound problems with FILE:LINE:COL and exits 2', () => {
    const path = file('cli.yaml', fleet([], ['controller: { resyncInterval: 30d }']));
    const result = validate(path);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe(`${path}:3:31 controller.resyncInterval: must be at most 1d (86400000 ms)\n`);
  });

  it('reports ${file:/dev/zero} and deep nesting quickly', () => {
    const zero = file(
      'cli-zero.yaml',
      fleet().map((l) => l.replace('token: ghp_x', 'token: "${file:/dev/zero}"')),
    );
    const started = Date.now();
    expect(validate(zero).stdout).toContain(
      ':1:26 github.auth.token: cannot read file /dev/zero: not a regular file',
    );
    const deep = file('cli-deep.yaml', [`github: ${'{a: '.repeat(10_000)}1${'}'.repeat(10_000)}`]);
    expect(validate(deep).stdout).toContain('nested deeper than 64 levels');
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('warns about a webhook secret shorter than 16 characters, and still accepts it', () => {
    const path = file('short.yaml', fleet());
    const result = validate(path, { HOOK: 'short' });
    expect(result.status).toBe(0);
    expect(result.stdout).toBe('ok: 1 scale sets\n');
    expect(result.stderr).toBe(
      `warning: ${path}:2:20 webhook.secret: is 5 characters long; use at least 16 random characters ` +
        '(e.g. openssl rand -hex 32)\n',
    );
    expect(result.stderr).not.toContain('short\n');
    expect(validate(path).stderr).toBe('');
  });
});
