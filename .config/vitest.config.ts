import path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Lives in .config/ so the top level stays as the architecture says; the root is one up.
  root: path.resolve(import.meta.dirname, '..'),
  test: {
    include: [
      'test/**/*.test.ts',
      'actors/**/*.test.ts',
      'contracts/**/*.test.ts',
      'gateway/**/*.test.ts',
    ],
    globalSetup: ['test/global-setup.ts'],
    // Tests start real servers and databases; the defaults are too tight for that.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file gets its own process so its nats-server children die with it.
    pool: 'forks',
    // Failover and takeover times are asserted; on a 2-core machine, files running side by
    // side starve each other's workers. One file at a time keeps those figures honest.
    fileParallelism: false,
  },
});
