/**
 * The loader on many bad files: each rule is checked with the exact position and message a user would see.
 * Every fixture starts with HEAD (4 lines), so the first scale set is on line 5.
 */
import { describe, expect, it } from 'vitest';
import { formatProblem, parseConfig } from './index.js';
import type { FleetConfig } from './index.js';

const HEAD = ['github:', '  auth: { token: tok-123456 }', 'webhook: { secret: hook-secret }', 'scaleSets:'];
const SET = ['    scope: { org: octo }', '    labels: [linux]', '    max: 2', '    provider: { kind: sim }'];

const yaml = (...lines: string[]) => `${lines.join('\n')}\n`;

function problems(
  text: string,
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): string[] {
  const readFile = (path: string) => {
    if (path in files) return files[path]!;
    throw Object.assign(new Error('not found'), { code: 'ENOENT' });
  };
  const result = parseConfig(text, 'fleet.yaml', { env, readFile });
  return result.ok ? [] : result.problems.map(formatProblem);
}

function config(
  text: string,
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): FleetConfig {
  const result = parseConfig(text, '/etc/rf/fleet.yaml', {
    env,
    readFile: (path) => {
      if (path in files) return files[path]!;
      throw Object.assign(new Error('not found'), { code: 'ENOENT' });
    },
  });
  if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
  return result.config;
}

describe('a valid file', () => {
  it('gets every default', () => {
    const parsed = config(yaml(...HEAD, '  - name: small', ...SET));
    expect(parsed).toEqual({
      name: 'runner-fleet',
      github: {
        url: 'https://github.com',
        apiUrl: 'https://api.github.com',
        ghes: false,
        createsPerMinute: 180,
        auth: { token: 'tok-123456' },
      },
      webhook: { secret: 'hook-secret' },
      server: { host: '127.0.0.1', port: 8080 },
      store: { path: './runner-fleet.db' },
      controller: {
        resyncInterval: 30_000,
        orphanGracePeriod: 120_000,
        failureBackoff: 5_000,
        concurrency: 64,
      },
      scaleSets: [
        {
          name: 'small',
          scope: { org: 'octo' },
          runnerGroup: 'Default',
          labels: ['linux'],
          minIdle: 0,
          max: 2,
          ephemeral: true,
          registration: 'jit',
          discovery: 'webhook',
          priority: 0,
          bootstrapTimeout: 600_000,
          idleTimeout: 300_000,
          rerunInterruptedJobs: false,
          provider: { kind: 'sim', url: 'https://api.github.com', bootDelay: 0 },
        },
      ],
    });
  });

  it('is deep-frozen', () => {
    const parsed = config(yaml(...HEAD, '  - name: small', ...SET));
    expect(Object.isFrozen(parsed)).toBe(true);
    expect(Object.isFrozen(parsed.scaleSets)).toBe(true);
    expect(Object.isFrozen(parsed.scaleSets[0]!.labels)).toBe(true);
    expect(Object.isFrozen(parsed.scaleSets[0]!.provider)).toBe(true);
    expect(() => {
      (parsed.scaleSets[0] as { max: number }).max = 99;
    }).toThrow(TypeError);
  });

  it.each([
    ['https://github.com', undefined, 'https://api.github.com', false],
    ['https://ghe.example.com/', undefined, 'https://ghe.example.com/api/v3', true],
    ['https://octo.ghe.com', undefined, 'https://api.octo.ghe.com', false],
    ['https://github.com', 'http://127.0.0.1:3000/', 'http://127.0.0.1:3000', false],
    ['https://ghe.example.com', 'http://127.0.0.1:3000/api/v3', 'http://127.0.0.1:3000/api/v3', true],
  ])('url %s, apiUrl %s -> %s (ghes %s)', (url, apiUrl, expected, ghes) => {
    const parsed = config(
      yaml(
        'github:',
        `  url: ${url}`,
        ...(apiUrl === undefined ? [] : [`  apiUrl: ${apiUrl}`]),
        '  auth: { token: t0k3n }',
        'webhook: { secret: s }',
        'scaleSets:',
        '  - name: small',
        ...SET,
      ),
    );
    expect(parsed.github.apiUrl).toBe(expected);
    expect(parsed.github.ghes).toBe(ghes);
    expect(parsed.github.url).toBe(url.replace(/\/$/, ''));
  });

  it('gives the sim provider the origin of apiUrl unless it has its own url', () => {
    const parsed = config(
      yaml(
        'github: { apiUrl: "http://127.0.0.1:3000/api/v3", auth: { token: t } }',
        'webhook: { secret: s }',
        'scaleSets:',
        '  - { name: a, scope: { org: o }, labels: [a], max: 1, provider: { kind: sim } }',
        '  - { name: b, scope: { org: o }, labels: [b], max: 1, provider: { kind: sim, url: "http://sim:9/" } }',
      ),
    );
    expect(parsed.scaleSets[0]!.provider).toEqual({
      kind: 'sim',
      url: 'http://127.0.0.1:3000',
      bootDelay: 0,
    });
    expect(parsed.scaleSets[1]!.provider).toEqual({ kind: 'sim', url: 'http://sim:9', bootDelay: 0 });
  });

  it('drops self-hosted from labels and keeps their case', () => {
    const parsed = config(
      yaml(...HEAD, '  - name: small', SET[0]!, '    labels: [Self-Hosted, Linux, X64]', ...SET.slice(2)),
    );
    expect(parsed.scaleSets[0]!.labels).toEqual(['Linux', 'X64']);
  });

  it('accepts durations as strings or milliseconds and ids as digit strings', () => {
    const parsed = config(
      yaml(
        'github:',
        '  auth:',
        '    app: { id: "${env:APP_ID}", installationId: 77, privateKey: "${file:app.pem}" }',
        'webhook: { secret: s }',
        'controller: { resyncInterval: 1500, failureBackoff: 1h30m }',
        'scaleSets:',
        '  - name: small',
        ...SET,
      ),
      { APP_ID: '12345' },
      { '/etc/rf/app.pem': PEM },
    );
    expect(parsed.github.auth).toEqual({ app: { id: 12345, installationId: 77, privateKey: PEM.trimEnd() } });
    expect(parsed.controller).toEqual({
      resyncInterval: 1500,
      orphanGracePeriod: 120_000,
      failureBackoff: 5_400_000,
      concurrency: 64,
    });
  });

  it('lets separate organizations serve the same labels at the same priority', () => {
    expect(
      problems(
        yaml(
          ...HEAD,
          '  - { name: a, scope: { org: one }, labels: [x], max: 1, provider: { kind: sim } }',
          '  - { name: b, scope: { org: two }, labels: [x], max: 1, provider: { kind: sim } }',
          '  - { name: c, scope: { org: one }, labels: [x], max: 1, priority: 1, provider: { kind: sim } }',
          '  - { name: d, scope: { repo: two-x/app }, labels: [x], max: 1, provider: { kind: sim } }',
        ),
      ),
    ).toEqual([]);
  });
});

const PEM =
  '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAq7BFUpkGp3+LQmlQ\nYi1zSgAAAAAAAAAA==\n-----END RSA PRIVATE KEY-----\n';

describe('YAML itself', () => {
  it('reports a syntax error where it is', () => {
    expect(problems(yaml('github:', '  auth: [token', 'webhook: {}'))).toEqual([
      'fleet.yaml:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
  });

  it('reports a duplicate key at the second one', () => {
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, 'webhook: { secret: x }'))).toEqual([
      'fleet.yaml:10:1: Map keys must be unique',
    ]);
  });

  it('reports an empty file and a file that is not a mapping', () => {
    expect(problems('')).toEqual([
      'fleet.yaml:1:1: the file is empty; expected a mapping with github, webhook and scaleSets',
    ]);
    expect(problems('# only a comment\n')).toEqual([
      'fleet.yaml:1:1: the file is empty; expected a mapping with github, webhook and scaleSets',
    ]);
    expect(problems(yaml('- a', '- b'))).toEqual(['fleet.yaml:1:1: expected a mapping, got a list']);
  });
});

describe('schema problems', () => {
  it('locates an unknown key at the key and suggests the close one', () => {
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, 'servr: { port: 1 }'))).toEqual([
      "fleet.yaml:10:1 servr: unknown key 'servr' (did you mean 'server'?)",
    ]);
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, '    minidle: 1'))).toEqual([
      "fleet.yaml:10:5 scaleSets[0].minidle: unknown key 'minidle' (did you mean 'minIdle'?)",
    ]);
  });

  it('lists the accepted keys when no key is close', () => {
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, 'store: { path: x, journal: wal }'))).toEqual([
      "fleet.yaml:10:19 store.journal: unknown key 'journal'; expected one of: path",
    ]);
  });

  it('suggests keys of the selected provider block', () => {
    expect(
      problems(
        yaml(...HEAD, '  - name: a', ...SET.slice(0, 3), '    provider: { kind: kubernetes, namespce: ci }'),
      ),
    ).toEqual([
      'fleet.yaml:9:15 scaleSets[0].provider.namespace: required',
      "fleet.yaml:9:35 scaleSets[0].provider.namespce: unknown key 'namespce' (did you mean 'namespace'?)",
    ]);
  });

  it('locates a missing key at the mapping that lacks it', () => {
    expect(problems(yaml(...HEAD, '  - name: a', ...SET.slice(0, 2), SET[3]!))).toEqual([
      'fleet.yaml:5:5 scaleSets[0].max: required',
    ]);
    expect(problems(yaml('github:', '  auth: { token: t }', 'scaleSets:', '  - name: a', ...SET))).toEqual([
      'fleet.yaml:1:1 webhook: required',
    ]);
  });

  it('names the expected and the given kind of value, never the value', () => {
    expect(problems(yaml(...HEAD, '  - name: a', ...SET.slice(0, 2), '    max: ten', SET[3]!))).toEqual([
      'fleet.yaml:8:10 scaleSets[0].max: expected a number, got a string',
    ]);
    expect(problems(yaml(...HEAD, '  - name: a', ...SET.slice(0, 2), '    max: 2.5', SET[3]!))).toEqual([
      'fleet.yaml:8:10 scaleSets[0].max: expected an integer, got a fraction',
    ]);
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, '    ephemeral: "yes"'))).toEqual([
      'fleet.yaml:10:16 scaleSets[0].ephemeral: expected true or false, got a string',
    ]);
    expect(problems(yaml('github:', 'webhook: { secret: s }', 'scaleSets:', '  - name: a', ...SET))).toEqual([
      'fleet.yaml:1:1 github: expected a mapping, got an empty value',
    ]);
  });

  it('rejects max below 1', () => {
    expect(problems(yaml(...HEAD, '  - name: a', ...SET.slice(0, 2), '    max: 0', SET[3]!))).toEqual([
      'fleet.yaml:8:10 scaleSets[0].max: must be at least 1',
    ]);
  });

  it('rejects an unknown registration mode and a bad duration', () => {
    expect(
      problems(
        yaml(...HEAD, '  - name: a', ...SET, '    registration: pat', '    bootstrapTimeout: 10 minutes'),
      ),
    ).toEqual([
      'fleet.yaml:10:19 scaleSets[0].registration: expected one of: jit, token',
      'fleet.yaml:11:23 scaleSets[0].bootstrapTimeout: invalid duration; use e.g. 500ms, 30s, 10m, 1h or a number of ms',
    ]);
  });

  it('rejects a concurrency below 1 or above 1000', () => {
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, 'controller: { concurrency: 0 }'))).toEqual([
      'fleet.yaml:10:28 controller.concurrency: must be at least 1',
    ]);
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, 'controller: { concurrency: 5000 }'))).toEqual([
      'fleet.yaml:10:28 controller.concurrency: must be at most 1000',
    ]);
  });

  it('takes github.createsPerMinute for pacing (GHES: lower) and rejects one below 2 where it is', () => {
    const ghes = ['github:', '  auth: { token: tok-123456 }', '  createsPerMinute: 60', ...HEAD.slice(2)];
    expect(config(yaml(...ghes, '  - name: a', ...SET)).github.createsPerMinute).toBe(60);
    const bad = ['github:', '  auth: { token: tok-123456 }', '  createsPerMinute: 1', ...HEAD.slice(2)];
    expect(problems(yaml(...bad, '  - name: a', ...SET))).toEqual([
      'fleet.yaml:3:21 github.createsPerMinute: must be at least 2',
    ]);
  });

  it('rejects a zero resync interval', () => {
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, 'controller: { resyncInterval: 0s }'))).toEqual([
      'fleet.yaml:10:31 controller.resyncInterval: must be at least 1ms',
    ]);
  });

  it('requires at least one scale set', () => {
    expect(problems(yaml(...HEAD.slice(0, 3), 'scaleSets: []'))).toEqual([
      'fleet.yaml:4:12 scaleSets: needs at least one scale set',
    ]);
  });
});

describe('scale set names', () => {
  it('must be DNS labels of at most 40 characters', () => {
    expect(problems(yaml(...HEAD, '  - name: Linux_Small', ...SET))).toEqual([
      "fleet.yaml:5:11 scaleSets[0].name: must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
    ]);
    expect(problems(yaml(...HEAD, `  - name: ${'a'.repeat(41)}`, ...SET))).toEqual([
      'fleet.yaml:5:11 scaleSets[0].name: must be at most 40 characters',
    ]);
  });

  it('must be unique', () => {
    expect(
      problems(
        yaml(...HEAD, '  - name: a', ...SET, '  - name: a', SET[0]!, '    labels: [b]', ...SET.slice(2)),
      ),
    ).toEqual(['fleet.yaml:10:11 scaleSets[1].name: duplicate scale set name (also scaleSets[0])']);
  });

  it('must not be another name followed by -', () => {
    expect(
      problems(
        yaml(
          ...HEAD,
          '  - name: gpu-large',
          ...SET,
          '  - name: gpu',
          SET[0]!,
          '    labels: [gpu]',
          ...SET.slice(2),
        ),
      ),
    ).toEqual([
      "fleet.yaml:5:11 scaleSets[0].name: starts with 'gpu-', the runner name prefix of scale set 'gpu' (scaleSets[1]): runner ownership would be ambiguous; rename one",
    ]);
  });
});

describe('labels', () => {
  const withLabels = (labels: string) =>
    yaml(...HEAD, '  - name: a', SET[0]!, `    labels: ${labels}`, ...SET.slice(2));

  it.each([
    ['[]', 'fleet.yaml:7:13 scaleSets[0].labels: needs at least one label besides self-hosted'],
    ['[self-hosted]', 'fleet.yaml:7:13 scaleSets[0].labels: needs at least one label besides self-hosted'],
    ['[linux, ""]', 'fleet.yaml:7:21 scaleSets[0].labels[1]: must not be empty'],
    ['[linux, " x64"]', 'fleet.yaml:7:21 scaleSets[0].labels[1]: must not start or end with spaces'],
    ['[linux, "a,b"]', 'fleet.yaml:7:21 scaleSets[0].labels[1]: must not contain a comma'],
    ['[linux, LINUX]', 'fleet.yaml:7:21 scaleSets[0].labels[1]: duplicate label (same as labels[0])'],
    ['[linux, 64]', 'fleet.yaml:7:21 scaleSets[0].labels[1]: expected a string, got a number'],
    ['linux', 'fleet.yaml:7:13 scaleSets[0].labels: expected a list, got a string'],
  ])('%s', (labels, expected) => {
    expect(problems(withLabels(labels))).toEqual([expected]);
  });

  it('allows at most 100', () => {
    const many = `[${Array.from({ length: 101 }, (_, index) => `l${index}`).join(', ')}]`;
    expect(problems(withLabels(many))).toEqual(['fleet.yaml:7:13 scaleSets[0].labels: at most 100 labels']);
  });

  it('may not be served twice at the same priority in overlapping scopes, whatever their case and order', () => {
    expect(
      problems(
        yaml(
          ...HEAD,
          '  - { name: a, scope: { org: octo }, labels: [linux, x64], max: 1, provider: { kind: sim } }',
          '  - { name: b, scope: { repo: Octo/app }, labels: [X64, self-hosted, Linux], max: 1, provider: { kind: sim } }',
          '  - { name: c, scope: { enterprise: ent }, labels: [x64, linux], max: 1, priority: 0, provider: { kind: sim } }',
        ),
      ),
    ).toEqual([
      "fleet.yaml:6:51 scaleSets[1].labels: scale set 'a' (scaleSets[0]) serves the same labels at the same priority (0) in an overlapping scope; change the labels or the priority",
      "fleet.yaml:7:52 scaleSets[2].labels: scale set 'a' (scaleSets[0]) serves the same labels at the same priority (0) in an overlapping scope; change the labels or the priority",
    ]);
  });
});

describe('cross-field rules', () => {
  it('minIdle must not exceed max', () => {
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, '    minIdle: 3'))).toEqual([
      'fleet.yaml:10:14 scaleSets[0].minIdle: must not exceed max (2)',
    ]);
  });

  it('jit registration needs ephemeral runners', () => {
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, '    ephemeral: false'))).toEqual([
      'fleet.yaml:10:16 scaleSets[0].ephemeral: registration jit needs ephemeral: true (a JIT runner takes one job); use registration: token',
    ]);
    expect(
      problems(yaml(...HEAD, '  - name: a', ...SET, '    ephemeral: false', '    registration: token')),
    ).toEqual([]);
  });

  it('discovery is webhook or scale-set; scale-set needs jit registration', () => {
    const set = (...extra: string[]) => config(yaml(...HEAD, '  - name: a', ...SET, ...extra)).scaleSets[0]!;
    expect(set().discovery).toBe('webhook');
    expect(set('    discovery: scale-set').discovery).toBe('scale-set');
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, '    discovery: queue'))).toEqual([
      expect.stringMatching(/^fleet\.yaml:10:16 scaleSets\[0\]\.discovery: .*webhook.*scale-set/),
    ]);
    expect(
      problems(
        yaml(
          ...HEAD,
          '  - name: a',
          ...SET,
          '    discovery: scale-set',
          '    ephemeral: false',
          '    registration: token',
        ),
      ),
    ).toEqual([
      'fleet.yaml:12:19 scaleSets[0].registration: discovery scale-set needs registration: jit (a runner scale set hands out JIT configs only)',
    ]);
  });

  it('enterprise scope needs a token, not an App', () => {
    const text = yaml(
      'github:',
      '  auth: { app: { id: 1, privateKey: "${env:KEY}" } }',
      'webhook: { secret: s }',
      'scaleSets:',
      '  - name: a',
      '    scope: { enterprise: octo-ent }',
      ...SET.slice(1),
    );
    expect(problems(text, { KEY: PEM })).toEqual([
      'fleet.yaml:6:26 scaleSets[0].scope.enterprise: enterprise scope needs github.auth.token (a classic PAT); a GitHub App cannot manage enterprise runners',
    ]);
  });

  it('repository scale sets cannot pick a runner group', () => {
    expect(
      problems(
        yaml(...HEAD, '  - name: a', '    scope: { repo: o/r }', ...SET.slice(1), '    runnerGroup: gpu'),
      ),
    ).toEqual([
      'fleet.yaml:10:18 scaleSets[0].runnerGroup: repository runners are always in the Default group; remove runnerGroup or use an org scope',
    ]);
  });

  it('identity only with the kubernetes provider', () => {
    expect(
      problems(
        yaml(
          ...HEAD,
          '  - name: a',
          ...SET,
          '    identity: { aws: { roleArn: "arn:aws:iam::123456789012:role/ci" } }',
        ),
      ),
    ).toEqual([
      'fleet.yaml:10:15 scaleSets[0].identity: identity is only supported by the kubernetes provider (this scale set uses sim)',
    ]);
  });

  it('collects every problem of a file in one run, in file order', () => {
    const text = yaml(
      'github:',
      '  auth: {}',
      'webhook: { secret: "" }',
      'scaleSets:',
      '  - name: A',
      '    scope: { org: o, repo: o/r }',
      '    labels: [linux]',
      '    max: 1',
      '    minIdle: 5',
      '    ephemeral: false',
      '    provider: { kind: docker }',
      '  - name: a',
      '    scope: { org: o }',
      '    labels: [Linux]',
      '    max: 0',
      '    provider: { kind: process }',
    );
    expect(problems(text)).toEqual([
      'fleet.yaml:2:9 github.auth: give exactly one of `app` or `token`',
      'fleet.yaml:3:20 webhook.secret: must not be empty',
      "fleet.yaml:5:11 scaleSets[0].name: must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
      'fleet.yaml:6:12 scaleSets[0].scope: give exactly one of `org`, `repo` or `enterprise`',
      'fleet.yaml:9:14 scaleSets[0].minIdle: must not exceed max (1)',
      'fleet.yaml:10:16 scaleSets[0].ephemeral: registration jit needs ephemeral: true (a JIT runner takes one job); use registration: token',
      "fleet.yaml:11:23 scaleSets[0].provider.kind: unknown kind 'docker'; known kinds: process, sim, kubernetes, ec2",
      'fleet.yaml:15:10 scaleSets[1].max: must be at least 1',
      'fleet.yaml:16:15 scaleSets[1].provider.command: required',
    ]);
  });
});

describe('github.auth', () => {
  const auth = (line: string) =>
    yaml('github:', line, 'webhook: { secret: s }', 'scaleSets:', '  - name: a', ...SET);

  it('needs exactly one of app or token', () => {
    expect(
      problems(auth('  auth: { token: t, app: { id: 1, privateKey: "${env:K}" } }'), { K: PEM }),
    ).toEqual(['fleet.yaml:2:9 github.auth: give exactly one of `app` or `token`']);
  });

  it('rejects a token with spaces without echoing it', () => {
    expect(problems(auth('  auth: { token: "${env:T}" }'), { T: 'ghp secret value' })).toEqual([
      'fleet.yaml:2:18 github.auth.token: must be a token: no spaces or newlines, not empty',
    ]);
  });

  it('rejects a private key that is not PEM, without echoing it', () => {
    const out = problems(auth('  auth: { app: { id: 7, privateKey: "${env:K}" } }'), {
      K: 'not-a-key-SUPERSECRET',
    });
    expect(out).toEqual([
      'fleet.yaml:2:37 github.auth.app.privateKey: must be a PEM private key (-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----); keep it in a file and write ${file:/path/to/app.pem}',
    ]);
  });

  it('rejects encrypted keys and bad ids', () => {
    const encrypted = '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----';
    expect(problems(auth('  auth: { app: { id: -1, privateKey: "${env:K}" } }'), { K: encrypted })).toEqual([
      'fleet.yaml:2:22 github.auth.app.id: expected a positive integer (the GitHub App id)',
      'fleet.yaml:2:38 github.auth.app.privateKey: encrypted private keys are not supported; export it unencrypted',
    ]);
  });

  it('accepts a PKCS#8 key', () => {
    const pkcs8 = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg==\n-----END PRIVATE KEY-----';
    expect(problems(auth('  auth: { app: { id: 7, privateKey: "${env:K}" } }'), { K: pkcs8 })).toEqual([]);
  });
});

describe('scope', () => {
  const scope = (text: string) => yaml(...HEAD, '  - name: a', `    scope: ${text}`, ...SET.slice(1));
  it.each([
    ['{}', 'fleet.yaml:6:12 scaleSets[0].scope: give exactly one of `org`, `repo` or `enterprise`'],
    [
      '{ org: a, enterprise: b }',
      'fleet.yaml:6:12 scaleSets[0].scope: give exactly one of `org`, `repo` or `enterprise`',
    ],
    ['{ repo: just-a-name }', 'fleet.yaml:6:20 scaleSets[0].scope.repo: must be owner/name'],
    ['{ org: "bad org" }', 'fleet.yaml:6:19 scaleSets[0].scope.org: must be an organization login'],
    [
      '{ team: x }',
      "fleet.yaml:6:14 scaleSets[0].scope.team: unknown key 'team'; expected one of: org, repo, enterprise",
    ],
  ])('%s', (text, expected) => {
    expect(problems(scope(text))).toContain(expected);
  });
});

describe('identity', () => {
  const identity = (text: string) =>
    yaml(
      ...HEAD,
      '  - name: a',
      ...SET.slice(0, 3),
      '    provider: { kind: kubernetes, namespace: ci }',
      `    identity: ${text}`,
    );

  it('accepts each cloud in its format', () => {
    expect(
      problems(identity('{ aws: { roleArn: "arn:aws-us-gov:iam::123456789012:role/path/to/ci-runner" } }')),
    ).toEqual([]);
    expect(
      problems(identity('{ gcp: { serviceAccount: ci-runner@my-project.iam.gserviceaccount.com } }')),
    ).toEqual([]);
    expect(problems(identity('{ azure: { clientId: 0f0e0d0c-1b2a-4c3d-8e9f-a0b1c2d3e4f5 } }'))).toEqual([]);
  });

  it.each([
    [
      '{ aws: { roleArn: "arn:aws:iam::12345:role/ci" } }',
      'fleet.yaml:10:33 scaleSets[0].identity.aws.roleArn: must be an IAM role ARN: arn:aws:iam::<12-digit account>:role/<path/name>',
    ],
    [
      '{ gcp: { serviceAccount: ci@gmail.com } }',
      'fleet.yaml:10:40 scaleSets[0].identity.gcp.serviceAccount: must be a Google service account: <name>@<project>.iam.gserviceaccount.com',
    ],
    [
      '{ azure: { clientId: not-a-guid } }',
      'fleet.yaml:10:36 scaleSets[0].identity.azure.clientId: must be a client id GUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx',
    ],
    ['{}', 'fleet.yaml:10:15 scaleSets[0].identity: give one of `aws`, `gcp` or `azure`'],
  ])('%s', (text, expected) => {
    expect(problems(identity(text))).toEqual([expected]);
  });
});

describe('provider blocks', () => {
  const provider = (...lines: string[]) =>
    yaml(...HEAD, '  - name: a', ...SET.slice(0, 3), '    provider:', ...lines);

  it('needs a kind, and lists the known ones for an unknown kind', () => {
    expect(problems(provider('      command: x'))).toEqual([
      'fleet.yaml:10:7 scaleSets[0].provider.kind: required; one of: process, sim, kubernetes, ec2',
    ]);
    expect(problems(provider('      kind: nomad'))).toEqual([
      "fleet.yaml:10:13 scaleSets[0].provider.kind: unknown kind 'nomad'; known kinds: process, sim, kubernetes, ec2",
    ]);
  });

  it('process: command, env names, reserved variables, durations', () => {
    expect(
      problems(
        provider(
          '      kind: process',
          '      command: run.sh',
          '      args: [--once]',
          '      env: { A: "1" }',
        ),
      ),
    ).toEqual([]);
    expect(
      problems(
        provider(
          '      kind: process',
          '      command: ""',
          '      env: { 1BAD: x, ACTIONS_RUNNER_INPUT_JITCONFIG: y, N: 1 }',
          '      stopGracePeriod: soon',
        ),
      ),
    ).toEqual([
      'fleet.yaml:11:16 scaleSets[0].provider.command: must not be empty',
      'fleet.yaml:12:14 scaleSets[0].provider.env["1BAD"]: environment variable names are [A-Za-z_][A-Za-z0-9_]*',
      'fleet.yaml:12:61 scaleSets[0].provider.env.N: expected a string value (quote numbers and booleans)',
      'fleet.yaml:13:24 scaleSets[0].provider.stopGracePeriod: invalid duration; use e.g. 500ms, 30s, 10m, 1h or a number of ms',
    ]);
  });

  it('process: the JIT variable is reserved', () => {
    expect(
      problems(
        provider(
          '      kind: process',
          '      command: run.sh',
          '      env: { ACTIONS_RUNNER_INPUT_JITCONFIG: y }',
        ),
      ),
    ).toEqual([
      'fleet.yaml:12:14 scaleSets[0].provider.env.ACTIONS_RUNNER_INPUT_JITCONFIG: ACTIONS_RUNNER_INPUT_JITCONFIG is set by runner-fleet; remove it',
    ]);
  });

  it('sim: url must be http(s)', () => {
    expect(problems(provider('      kind: sim', '      url: ftp://x'))).toEqual([
      'fleet.yaml:11:12 scaleSets[0].provider.url: must be an http:// or https:// URL',
    ]);
  });

  it('kubernetes: defaults', () => {
    const parsed = config(provider('      kind: kubernetes', '      namespace: ci'));
    expect(parsed.scaleSets[0]!.provider).toEqual({
      kind: 'kubernetes',
      namespace: 'ci',
      containerMode: 'none',
      serviceAccount: { create: true },
    });
    const withVolume = config(
      provider('      kind: kubernetes', '      namespace: ci', '      workVolume: {}'),
    );
    expect(withVolume.scaleSets[0]!.provider.workVolume).toEqual({ size: '10Gi' });
  });

  it('kubernetes: namespace, service account, container mode', () => {
    expect(
      problems(
        provider(
          '      kind: kubernetes',
          '      namespace: CI_Runners',
          '      containerMode: docker',
          '      serviceAccount: { create: true, name: existing }',
        ),
      ),
    ).toEqual([
      "fleet.yaml:11:18 scaleSets[0].provider.namespace: must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
      'fleet.yaml:12:22 scaleSets[0].provider.containerMode: expected one of: none, dind, kubernetes',
      'fleet.yaml:13:23 scaleSets[0].provider.serviceAccount: give exactly one of `create: true` or `name: <existing>`',
    ]);
    expect(
      problems(
        provider('      kind: kubernetes', '      namespace: ci', '      serviceAccount: { create: false }'),
      ),
    ).toEqual([
      'fleet.yaml:12:33 scaleSets[0].provider.serviceAccount.create: only `create: true` is accepted; to use an existing account give `name`',
    ]);
  });

  it('kubernetes: the template passes PodSpec fields through but checks what runner-fleet reads', () => {
    const ok = provider(
      '      kind: kubernetes',
      '      namespace: ci',
      '      template:',
      '        metadata: { labels: { app.kubernetes.io/part-of: ci } }',
      '        spec:',
      '          priorityClassName: ci',
      '          containers: [{ name: runner, resources: { limits: { cpu: "2" } } }]',
    );
    expect(problems(ok)).toEqual([]);
    const bad = provider(
      '      kind: kubernetes',
      '      namespace: ci',
      '      template:',
      '        metadata: { name: x, labels: { app.kubernetes.io/name: "not ok!" } }',
      '        spec:',
      '          nodeSelector: { disk: ssd, zone: 1 }',
      '          tolerations: [{ key: ci, operator: Maybe }]',
      '          containers: [{ image: x }, { name: runner }, { name: runner }]',
    );
    expect(problems(bad)).toEqual([
      "fleet.yaml:13:21 scaleSets[0].provider.template.metadata.name: unknown key 'name'; expected one of: labels, annotations",
      'fleet.yaml:13:64 scaleSets[0].provider.template.metadata.labels["app.kubernetes.io/name"]: must be a Kubernetes label value: at most 63 of [A-Za-z0-9-_.], starting and ending alphanumeric',
      'fleet.yaml:15:44 scaleSets[0].provider.template.spec.nodeSelector.zone: expected a string value (quote numbers and booleans)',
      'fleet.yaml:16:46 scaleSets[0].provider.template.spec.tolerations[0].operator: expected one of: Exists, Equal',
      'fleet.yaml:17:24 scaleSets[0].provider.template.spec.containers[0].name: required',
      "fleet.yaml:17:64 scaleSets[0].provider.template.spec.containers[2].name: duplicate container name 'runner'",
    ]);
  });

  it('kubernetes: label and annotation keys, volume size', () => {
    expect(
      problems(
        provider(
          '      kind: kubernetes',
          '      namespace: ci',
          '      podLabels: { "bad key!": x }',
          '      workVolume: { size: ten gigs }',
        ),
      ),
    ).toEqual([
      'fleet.yaml:12:20 scaleSets[0].provider.podLabels["bad key!"]: must be a Kubernetes label or annotation key: [prefix/]name, name at most 63 of [A-Za-z0-9-_.]',
      'fleet.yaml:13:27 scaleSets[0].provider.workVolume.size: must be a Kubernetes quantity such as 10Gi or 500Mi',
    ]);
  });

  it('ec2: region, image or launch template', () => {
    expect(
      problems(
        provider(
          '      kind: ec2',
          '      region: eu-west-1',
          '      imageId: ami-0123abcd',
          '      instanceProfile: runner',
          '      instanceTypes: [m7g.large]',
        ),
      ),
    ).toEqual([]);
    expect(
      problems(
        provider(
          '      kind: ec2',
          '      region: eu-west-1',
          '      launchTemplate: { name: ci-runners, version: 3 }',
        ),
      ),
    ).toEqual([]);
    expect(
      problems(
        provider(
          '      kind: ec2',
          '      region: Ireland',
          '      launchTemplate: { name: ci-runners, id: lt-0abc }',
        ),
      ),
    ).toEqual([
      'fleet.yaml:11:15 scaleSets[0].provider.region: must be an AWS region such as eu-west-1',
      'fleet.yaml:12:23 scaleSets[0].provider.launchTemplate: give exactly one of `name` or `id`',
    ]);
    expect(problems(provider('      kind: ec2', '      region: eu-west-1'))).toEqual([
      'fleet.yaml:10:7 scaleSets[0].provider: give `launchTemplate` or `imageId` (or both)',
    ]);
  });

  it('ec2: what each launch path needs, and spot-only settings', () => {
    expect(
      problems(
        provider(
          '      kind: ec2',
          '      region: eu-west-1',
          '      imageId: ami-0123abcd',
          '      instanceTypes: [m7g.large, m6g.large]',
          '      allocationStrategy: prioritized',
          '      onDemandFailover: [InsufficientInstanceCapacity]',
        ),
      ),
    ).toEqual([
      'fleet.yaml:12:16 scaleSets[0].provider.imageId: an `imageId` launch without a launch template needs `instanceProfile` (the instance reads its SSM parameter with it)',
      'fleet.yaml:13:22 scaleSets[0].provider.instanceTypes: several instance types launch through CreateFleet, which needs `launchTemplate`; give one type or a launch template',
      'fleet.yaml:15:25 scaleSets[0].provider.onDemandFailover: `onDemandFailover` applies to `capacity: spot` only',
    ]);
    expect(
      problems(
        provider(
          '      kind: ec2',
          '      region: eu-west-1',
          '      launchTemplate: { name: ci-runners }',
          '      instanceProfile: runner',
          '      capacity: spot',
          '      allocationStrategy: prioritized',
        ),
      ),
    ).toEqual([
      'fleet.yaml:13:24 scaleSets[0].provider.instanceProfile: with `launchTemplate`, put `instanceProfile` in the launch template (CreateFleet cannot override it)',
      'fleet.yaml:15:27 scaleSets[0].provider.allocationStrategy: `prioritized` is not a spot allocation strategy; use one of price-capacity-optimized, capacity-optimized, lowest-price',
    ]);
  });
});

describe('anchors and merge keys', () => {
  const shared = [
    'github: { auth: { token: t } }',
    'webhook: { secret: s }',
    'x-linux: &linux',
    '  scope: { org: octo }',
    '  max: 4',
    '  provider: { kind: process, command: "${env:RUNNER}" }',
  ];

  it('merges shared settings, lets the scale set override them and ignores top-level x- keys', () => {
    const parsed = config(
      yaml(
        ...shared,
        'scaleSets:',
        '  - { <<: *linux, name: small, labels: [small] }',
        '  - { <<: *linux, name: large, labels: [large], max: 1 }',
      ),
      { RUNNER: '/opt/run.sh' },
    );
    expect(parsed.scaleSets.map((set) => [set.name, set.max, set.scope, set.provider.command])).toEqual([
      ['small', 4, { org: 'octo' }, '/opt/run.sh'],
      ['large', 1, { org: 'octo' }, '/opt/run.sh'],
    ]);
  });

  it('locates a problem in merged settings at the anchor', () => {
    expect(
      problems(yaml(...shared, 'scaleSets:', '  - { <<: *linux, name: small, labels: [small], minIdle: 9 }')),
    ).toEqual([
      'fleet.yaml:6:39 scaleSets[0].provider.command: environment variable RUNNER is not set',
      'fleet.yaml:8:58 scaleSets[0].minIdle: must not exceed max (4)',
    ]);
    expect(
      problems(
        yaml(
          ...shared.map((line) => line.replace('max: 4', 'max: -1')),
          'scaleSets:',
          '  - { <<: *linux, name: a, labels: [a] }',
        ),
        {
          RUNNER: 'x',
        },
      ),
    ).toEqual(['fleet.yaml:5:8 scaleSets[0].max: must be at least 1']);
  });

  it('still rejects other unknown top-level keys', () => {
    expect(problems(yaml(...HEAD, '  - name: a', ...SET, 'defaults: {}'))).toEqual([
      "fleet.yaml:10:1 defaults: unknown key 'defaults'; expected one of: name, github, webhook, server, store, controller, scaleSets",
    ]);
  });
});

describe('secret references', () => {
  it('locates a missing variable or file at the field that references it', () => {
    const text = yaml(
      'github:',
      '  auth: { token: "${env:GH_TOKEN}" }',
      'webhook:',
      '  secret: ${file:hook.txt}',
      'scaleSets:',
      '  - name: a',
      ...SET,
    );
    expect(problems(text)).toEqual([
      'fleet.yaml:2:18 github.auth.token: environment variable GH_TOKEN is not set',
      'fleet.yaml:4:11 webhook.secret: cannot read file hook.txt: no such file',
    ]);
  });

  it('resolves a file relative to the config file', () => {
    const parsed = config(
      yaml(
        ...HEAD.slice(0, 2),
        'webhook: { secret: "${file:secrets/hook}" }',
        ...HEAD.slice(3),
        '  - name: a',
        ...SET,
      ),
      {},
      { '/etc/rf/secrets/hook': 'from-file\n' },
    );
    expect(parsed.webhook.secret).toBe('from-file');
  });

  it('never puts a resolved value in a message, even where a message would name it', () => {
    const secretName = 'topsecret-runners';
    const text = yaml(
      'github:',
      '  auth: { token: "${env:TOKEN}", app: { id: "${env:TOKEN}", privateKey: "${env:TOKEN}" } }',
      'webhook: { secret: "${env:TOKEN}" }',
      'scaleSets:',
      '  - name: ${env:NAME}',
      ...SET,
      '  - name: ${env:NAME}-x',
      SET[0]!,
      '    labels: [other]',
      ...SET.slice(2),
    );
    const token = 'ghp_s3cr3t value with spaces';
    const out = problems(text, { TOKEN: token, NAME: secretName });
    expect(out.length).toBeGreaterThanOrEqual(4);
    expect(out.some((line) => line.includes('runner name prefix'))).toBe(true);
    for (const line of out) {
      expect(line).not.toContain(token);
      expect(line).not.toContain(secretName);
    }
  });

  it('does not repeat a failed reference as a schema problem', () => {
    expect(
      problems(
        yaml(
          ...HEAD.slice(0, 2),
          'webhook: { secret: "${env:NOPE}" }',
          ...HEAD.slice(3),
          '  - name: a',
          ...SET,
        ),
      ),
    ).toEqual(['fleet.yaml:3:20 webhook.secret: environment variable NOPE is not set']);
  });
});
