import path from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/ and what each may import (besides itself and npm packages). This table is the architecture's
 * direction of imports: the `layers/imports` rule below enforces it on every production file, test/architecture
 * checks that the folder graph has no cycle, and docs/architecture.md draws it. Tests (*.test.ts, *.test-helpers.ts)
 * may cross layers.
 */
export const LAYERS = {
  lib: [],
  core: ['lib'],
  telemetry: ['lib', 'core'],
  store: ['lib', 'core'],
  github: ['lib', 'core', 'telemetry'],
  kubernetes: ['lib', 'core'],
  aws: ['lib', 'core'],
  providers: ['lib', 'core', 'aws', 'kubernetes'],
  config: ['lib', 'core'], // and the providers' schemas: NARROW_ALLOWANCES
  server: ['lib', 'core', 'github', 'telemetry'],
  dashboard: ['lib', 'core', 'server', 'telemetry'],
  sim: ['lib', 'aws', 'kubernetes'],
  app: [
    'lib',
    'core',
    'telemetry',
    'store',
    'github',
    'kubernetes',
    'aws',
    'providers',
    'config',
    'server',
    'dashboard',
  ],
  demo: [
    'lib',
    'core',
    'telemetry',
    'kubernetes',
    'aws',
    'providers',
    'config',
    'server',
    'dashboard',
    'sim',
    'app',
  ],
  cli: [
    'lib',
    'core',
    'telemetry',
    'kubernetes',
    'aws',
    'providers',
    'config',
    'server',
    'sim',
    'app',
    'demo',
  ],
};

/** npm packages a layer must not import: core reaches the world only through its ports. */
export const FORBIDDEN_PACKAGES = {
  core: ['@aws-sdk/', '@kubernetes/', '@octokit/', 'better-sqlite3', 'fastify', 'prom-client'],
};

/** Files of another layer that a layer may import although the layer itself is not allowed: none but these. */
export const NARROW_ALLOWANCES = {
  // The fleet schema composes the providers' schemas; config may read those and the list, not implementations.
  config: [/^providers\/(modules|schemas)\.(ts|js)$/, /^providers\/[^/]+\/(schema|module)\.(ts|js)$/],
};

const SRC = path.join(path.dirname(fileURLToPath(import.meta.url)), 'src');

/** `layer` and path inside src/ of an import `spec` written in `file`, or null when it is not under src/. */
function target(file, spec) {
  const resolved = path.relative(SRC, path.resolve(path.dirname(file), spec));
  if (resolved.startsWith('..') || path.isAbsolute(resolved)) return null;
  return { layer: resolved.split(path.sep)[0], inner: resolved.split(path.sep).slice(1).join('/'), resolved };
}

const layerImports = {
  meta: {
    type: 'problem',
    docs: { description: 'Imports follow the direction of LAYERS in eslint.config.js' },
    schema: [],
  },
  create(context) {
    const file = context.filename;
    const own = path.relative(SRC, file).split(path.sep)[0];
    if (!(own in LAYERS) || /\.test(-helpers)?\.ts$/.test(file)) return {};
    const check = (node, spec) => {
      if (typeof spec !== 'string') return;
      if (!spec.startsWith('.')) {
        const bad = (FORBIDDEN_PACKAGES[own] ?? []).find((p) => spec === p || spec.startsWith(p));
        if (bad)
          context.report({
            node,
            message: `src/${own} imports no SDK (${spec}): it reaches the world through its ports.`,
          });
        return;
      }
      const t = target(file, spec);
      if (t === null || t.layer === own || LAYERS[own].includes(t.layer)) return;
      if ((NARROW_ALLOWANCES[own] ?? []).some((re) => re.test(t.resolved.split(path.sep).join('/')))) return;
      const allowed =
        LAYERS[own].length > 0 ? LAYERS[own].map((a) => `src/${a}`).join(', ') : 'npm packages only';
      context.report({
        node,
        message: `src/${own} must not import src/${t.layer} (${spec}); it may import ${allowed}. See LAYERS in eslint.config.js and docs/architecture.md.`,
      });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
    };
  },
};

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'dist-check/', 'coverage/', 'test-output/', 'deploy/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { layers: { rules: { imports: layerImports } } },
    rules: { 'layers/imports': 'error' },
  },
);
