/**
 * The PostgreSQL store's migration runner (src/store/postgres/migrations.ts) and `npm run migrate`,
 * on a real PostgreSQL server (test/helpers/postgres.ts), one fresh database per test.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { REPO_ROOT } from '../helpers/gateway-process.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { MIGRATION_LOCK_KEY, MIGRATIONS, migrate, schemaVersion, type Migration } from '../../src/store/postgres/migrations.js';
import { createPgPool, type PgPool } from '../../src/store/postgres/pg-pool.js';

const run = promisify(execFile);
const SHARED_TABLES = [
  'azure_user_groups',
  'channel_heads',
  'channel_log',
  'dead_letters',
  'device_positions',
  'entities',
  'equipment',
  'gateway_meta',
  'intake',
  'nodes',
  'outbox',
  'revocations',
  'schema_migrations',
  'sequences',
  'trip_events',
  'trips',
  'user_presence',
];

let server: Postgres;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => server?.stop());

async function freshPool(url?: string): Promise<PgPool> {
  const pool = createPgPool(url ?? (await server.newDatabase()), { max: 2, onIdleError: (err) => expect.fail(`idle connection failed: ${err.message}`) });
  onTestFinished(() => pool.end());
  return pool;
}

async function tables(pool: PgPool): Promise<string[]> {
  const { rows } = await pool.query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
  return rows.map((r) => r.name);
}

async function recorded(pool: PgPool): Promise<{ version: number; name: string }[]> {
  const { rows } = await pool.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');
  return rows;
}

describe('PostgreSQL migrations', () => {
  it('give a fresh database every table of the shared store, recorded in schema_migrations', async () => {
    const pool = await freshPool();
    expect(await schemaVersion(pool)).toBe(0);
    const report = await migrate(pool);
    expect(report).toEqual({ before: 0, after: MIGRATIONS.length, applied: MIGRATIONS.map(({ version, name }) => ({ version, name })) });
    expect(await tables(pool)).toEqual(SHARED_TABLES);
    expect(await recorded(pool)).toEqual(MIGRATIONS.map(({ version, name }) => ({ version, name })));
    expect(await schemaVersion(pool)).toBe(MIGRATIONS.length);
    // The ids come from the store: identity columns, and the per-collection counter taken in one statement.
    const next =
      "INSERT INTO sequences (collection, last_id) VALUES ('sensores', 1) ON CONFLICT (collection) DO UPDATE SET last_id = sequences.last_id + 1 RETURNING last_id";
    expect((await pool.query(next)).rows[0].last_id).toBe('1');
    expect((await pool.query(next)).rows[0].last_id).toBe('2');
  });

  it('do nothing when run again', async () => {
    const pool = await freshPool();
    await migrate(pool);
    const again = await migrate(pool);
    expect(again).toEqual({ before: MIGRATIONS.length, after: MIGRATIONS.length, applied: [] });
    expect(await recorded(pool)).toHaveLength(MIGRATIONS.length);
  });

  it('apply each migration exactly once when three nodes start at once, and all three succeed', async () => {
    const url = await server.newDatabase();
    // A slow second migration, so that the three runners really overlap while it runs.
    const migrations: Migration[] = [
      ...MIGRATIONS,
      { version: MIGRATIONS.length + 1, name: 'slow', sql: 'SELECT pg_sleep(0.3); CREATE TABLE applied_once (n int); INSERT INTO applied_once VALUES (1);' },
    ];
    const pools = await Promise.all([freshPool(url), freshPool(url), freshPool(url)]);
    const reports = await Promise.all(pools.map((pool) => migrate(pool, { migrations })));
    const applied = reports.flatMap((r) => r.applied.map((m) => m.version)).sort((a, b) => a - b);
    expect(applied).toEqual(migrations.map((m) => m.version));
    expect(reports.filter((r) => r.applied.length > 0)).toHaveLength(1); // the first holder of the lock applies them all
    for (const r of reports) expect(r.after).toBe(migrations.length);
    expect((await pools[0].query('SELECT count(*)::int AS n FROM applied_once')).rows[0].n).toBe(1);
    expect(await recorded(pools[0])).toEqual(migrations.map(({ version, name }) => ({ version, name })));
  });

  it('refuse a database that a newer build migrated', async () => {
    const pool = await freshPool();
    const newer: Migration[] = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'from the future', sql: 'CREATE TABLE later (n int)' }];
    await migrate(pool, { migrations: newer });
    const refusal = migrate(pool);
    await expect(refusal).rejects.toMatchObject({ code: 'GW_ERR_CONFIG_INVALID' });
    await expect(refusal).rejects.toThrow(
      `the database of GATEWAY_DATABASE_URL has schema version ${MIGRATIONS.length + 1}, newer than this gateway build knows (${MIGRATIONS.length})`,
    );
    expect(await recorded(pool)).toHaveLength(MIGRATIONS.length + 1); // untouched
  });

  it('give up with the reason when another runner holds the lock past lockTimeoutMs', async () => {
    const pool = await freshPool();
    const holder = await pool.connect();
    onTestFinished(() => holder.release(true));
    await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    await expect(migrate(pool, { lockTimeoutMs: 200 })).rejects.toThrow(/another gateway has been migrating this database for more than 200 ms/);
    await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
    expect((await migrate(pool)).after).toBe(MIGRATIONS.length);
  });

  it('roll back a migration that fails, recording nothing of it', async () => {
    const pool = await freshPool();
    const broken: Migration[] = [
      ...MIGRATIONS,
      { version: MIGRATIONS.length + 1, name: 'broken', sql: 'CREATE TABLE half (n int); SELECT no_such_function();' },
    ];
    await expect(migrate(pool, { migrations: broken })).rejects.toThrow(
      /migration 2 \(broken\) failed and was rolled back: function no_such_function\(\) does not exist/,
    );
    expect(await schemaVersion(pool)).toBe(MIGRATIONS.length);
    expect(await tables(pool)).not.toContain('half');
    // The lock went with the failed runner's connection: the next runner is not kept waiting.
    expect((await migrate(pool, { lockTimeoutMs: 2_000 })).applied).toEqual([]);
  });
});

describe('npm run migrate', () => {
  const script = `${REPO_ROOT}dist/scripts/migrate.js`;

  it('applies the migrations by hand and prints the versions before and after (--database-url or GATEWAY_DATABASE_URL)', async () => {
    const url = await server.newDatabase();
    const first = await run(process.execPath, [script, '--database-url', url], { timeout: 20_000 });
    expect(first.stdout).toContain(`schema version 0 → ${MIGRATIONS.length}\n`);
    expect(first.stdout).toContain(`applied 1: ${MIGRATIONS[0].name}\n`);
    const env = { ...process.env, GATEWAY_DATABASE_URL: url };
    const second = await run(process.execPath, [script], { timeout: 20_000, env });
    expect(second.stdout).toBe(`schema version ${MIGRATIONS.length} → ${MIGRATIONS.length} (nothing to apply)\n`);
    const status = await run(process.execPath, [script, '--status'], { timeout: 20_000, env });
    expect(status.stdout).toBe(`schema version ${MIGRATIONS.length}; this build knows ${MIGRATIONS.length}\n`);
  });

  it('exits 1 with the reason when the database is newer, and 2 without a URL', async () => {
    const url = await server.newDatabase();
    const pool = await freshPool(url);
    await migrate(pool, { migrations: [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'newer', sql: 'SELECT 1' }] });
    const env = { ...process.env, GATEWAY_DATABASE_URL: undefined };
    const newer = await run(process.execPath, [script, '--database-url', url], { timeout: 20_000, env }).catch((e: { code: number; stderr: string }) => e);
    expect(newer).toMatchObject({ code: 1, stderr: expect.stringContaining('newer than this gateway build knows') });
    const missing = await run(process.execPath, [script], { timeout: 20_000, env }).catch((e: { code: number; stderr: string }) => e);
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining('give --database-url or set GATEWAY_DATABASE_URL') });
  });
});
