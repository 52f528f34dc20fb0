import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The closing summary lists every skipped suite with its reason and the command that makes it run.
    reporters: ['default', './test/support/skip-reporter.ts'],
  },
});
