/**
 * Micro-benchmark of the store drivers: entity creates per second and the latency of one create
 * (p50, p99), SQLite vs PostgreSQL, 1 and 8 concurrent writers, on the source modules (no gateway,
 * no pool threads). Skipped unless STORE_BENCH=1, so it never counts in the suite's time:
 *
 *   STORE_BENCH=1 npx vitest run test/bench/store-writes.test.ts
 *
 * Writers: SQLite, each its own connection to one gateway.sqlite, all on this thread (better-sqlite3
 * is synchronous, so they take turns, as the store pool's threads take turns on the write lock);
 * PostgreSQL, one pg.Pool of 8 connections. The PostgreSQL test server runs with fsync and
 * synchronous_commit off (test/helpers/postgres.ts), SQLite with synchronous=NORMAL: neither waits
 * for the disk at a commit, so the numbers compare the drivers' work and round trips, not the disk.
 * Prints one JSON line per run, tagged with the git revision.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CHANNELS, parseChannelsConfig } from '../../src/features/channels/channel-config.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../../src/protocol/bounded-json.js';
import { migrate } from '../../src/store/postgres/migrations.js';
import { createPgPool } from '../../src/store/postgres/pg-pool.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

const ENABLED = process.env.STORE_BENCH === '1';
const CREATES = Number(process.env.STORE_BENCH_CREATES ?? 4000);
const WARMUP = 200;
const SENSORES = parseChannelsConfig(DEFAULT_CHANNELS, { historySize: 1000, historyTtlS: 3600 }, 'extraccion').collections.find((c) => c.path === 'sensores')!;
const revision = () => execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/** `writers` loops sharing `total` creates; each create timed alone. */
async function run(stores: Store[], writers: number, total: number): Promise<{ perSecond: number; p50Ms: number; p99Ms: number }> {
  const latencies: number[] = [];
  let left = total;
  const writer = async (store: Store) => {
    while (left-- > 0) {
      const t0 = performance.now();
      await store.entities.create(SENSORES, { tipo: 'temp', descripcion: 'bench', zona: left });
      latencies.push(performance.now() - t0);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: writers }, (_, i) => writer(stores[i % stores.length])));
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return { perSecond: Math.round((total / elapsed) * 1000), p50Ms: round(quantile(latencies, 0.5)), p99Ms: round(quantile(latencies, 0.99)) };
}

describe.skipIf(!ENABLED)('store writes micro-benchmark (STORE_BENCH=1)', () => {
  let server: Postgres;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(() => server?.stop());

  for (const writers of [1, 8]) {
    it(`sqlite, ${writers} writer(s)`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'store-bench-'));
      const stores = Array.from({ length: writers }, () => openSqliteStore(dir, DEFAULT_MAX_JSON_DEPTH));
      try {
        await run(stores, writers, WARMUP);
        const result = await run(stores, writers, CREATES);
        console.log(JSON.stringify({ bench: 'store-creates', revision: revision(), backend: 'sqlite', writers, creates: CREATES, ...result }));
        expect(result.perSecond).toBeGreaterThan(0);
      } finally {
        for (const s of stores) await s.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);

    it(`postgres, ${writers} writer(s)`, async () => {
      const url = await server.newDatabase();
      const pool = createPgPool(url, { max: 8, onIdleError: () => {} });
      await migrate(pool);
      const store = new PostgresStore(pool, { maxJsonDepth: DEFAULT_MAX_JSON_DEPTH });
      try {
        await run([store], writers, WARMUP);
        const result = await run([store], writers, CREATES);
        console.log(JSON.stringify({ bench: 'store-creates', revision: revision(), backend: 'postgres', writers, creates: CREATES, ...result }));
        expect(result.perSecond).toBeGreaterThan(0);
      } finally {
        await store.close();
      }
    }, 120_000);
  }
});
