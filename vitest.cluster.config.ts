import { defineConfig } from 'vitest/config';

/**
 * The cluster suite alone (`npm run test:cluster`): test/cluster/, real PostgreSQL, Mosquitto and
 * several gateway processes per test. `npm test` (vitest.config.ts) runs these files too. One file
 * at a time: a file's cluster (up to three gateways, two brokers, PostgreSQL) fills a 2-core machine.
 */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    maxWorkers: 1,
    minWorkers: 1,
  },
});
