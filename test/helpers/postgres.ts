/**
 * A real PostgreSQL server for a test: the throwaway server of scripts/local-postgres.ts (shared with
 * the benchmark), with its test defaults: fsync, synchronous_commit and full_page_writes off. The
 * caller registers the teardown (`onTestFinished(pg.stop)` or `afterAll`).
 */
export { postgresBinDir, startPostgres, TEST_ROLE, type Postgres, type PostgresOptions } from '../../scripts/local-postgres.js';
