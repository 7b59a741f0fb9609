/**
 * The store contract (store.contract.ts) on the PostgreSQL driver, on a real server
 * (test/helpers/postgres.ts): one server for the file, a new database per test with the migrations
 * applied; another connection is another pg.Pool and PostgresStore on the same database, as another
 * pool thread or node opens it.
 *
 * Then the same calls on both drivers, compared byte for byte (times aside).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { DEFAULT_CHANNELS, parseChannelsConfig } from '../../src/features/channels/channel-config.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../../src/protocol/bounded-json.js';
import { migrate } from '../../src/store/postgres/migrations.js';
import { createPgPool, type PgPool } from '../../src/store/postgres/pg-pool.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { LogRow, Store } from '../../src/store/store.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { logged, storeContract } from './store.contract.js';

let server: Postgres;
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(() => server?.stop());

const pool = (url: string): PgPool => createPgPool(url, { max: 4, onIdleError: (err) => expect.fail(`idle connection failed: ${err.message}`) });

async function freshDatabase(): Promise<string> {
  const url = await server.newDatabase();
  const setup = pool(url);
  try {
    await migrate(setup);
  } finally {
    await setup.end();
  }
  return url;
}

storeContract('postgres', async ({ maxJsonDepth }) => {
  const url = await freshDatabase();
  const store = new PostgresStore(pool(url), { maxJsonDepth, node: 'node-a' });
  return {
    store,
    open: async () => new PostgresStore(pool(url), { maxJsonDepth, node: 'node-a' }),
    failOutboxInserts: async () => {
      const admin = pool(url);
      await admin.query(`CREATE FUNCTION outbox_fails() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'test: outbox inserts fail'; END $$;
        CREATE TRIGGER outbox_fails BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_fails()`);
      return async () => {
        await admin.query('DROP TRIGGER outbox_fails ON outbox; DROP FUNCTION outbox_fails()');
        await admin.end();
      };
    },
    dispose: () => store.close(),
  };
});

describe('the PostgreSQL driver answers byte for byte as the SQLite driver', () => {
  const collections = parseChannelsConfig(DEFAULT_CHANNELS, { historySize: 1000, historyTtlS: 3600 }, 'extraccion').collections;
  const SENSORES = collections.find((c) => c.path === 'sensores')!;
  const ISO = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g;
  const EPOCH_MS = /"(created_at|dead_at|at)": \d{13}/g;

  /** The same script on a store: every answer (or refusal) and the outbox, as text. */
  async function script(store: Store): Promise<string> {
    const out: unknown[] = [];
    const step = async (what: string, p: Promise<unknown>) =>
      out.push([
        what,
        await p.then(
          // An event's `logged` row is SQLite's alone (ingest's local fast path; the contract checks it against the log).
          (v) => (v === undefined ? v : JSON.parse(JSON.stringify(v, (key, x: unknown) => (key === 'logged' ? undefined : x)))),
          (e: Error & { code?: string }) => ({ refused: e.code, message: e.message }),
        ),
      ]);
    await step(
      'equipment',
      store.equipment.save([
        { code: 'PAL-1', kind: 'excavator', active: true, description: 'pala' },
        { code: 'CAM-1', kind: 'truck', active: true, description: null },
        { code: 'cam-2', kind: 'truck', active: false, description: 'ñ' },
        { code: 'CAM-1', kind: 'truck', active: true, description: 'twice' },
      ]),
    );
    await step('equipment list', store.equipment.list());
    await step('create', store.entities.create(SENSORES, { zeta: 1, alfa: { b: 2, a: [1, 'é'] }, __proto__x: null }));
    await step('create 2', store.entities.create(SENSORES, { tipo: 'x' }));
    await step('update', store.entities.update(SENSORES, 1, { alfa: null, nuevo: 'n', zeta: 1 }));
    await step('update same', store.entities.update(SENSORES, 1, { nuevo: 'n' }));
    await step('update none', store.entities.update(SENSORES, 9, { nuevo: 'n' }));
    await step('refused deep', store.entities.create(SENSORES, { d: JSON.parse('['.repeat(80) + ']'.repeat(80)) as unknown }));
    await step('delete', store.entities.delete(SENSORES, 2));
    await step('list', store.entities.list(SENSORES, 0, 10));
    await step('crear', store.trips.step('crear', { equipo: 'CAM-1', patente: 'AB-12', conductor: 'Ana' }));
    await step('crear inactive', store.trips.step('crear', { equipo: 'cam-2', patente: 'X' }));
    await step('crear unknown', store.trips.step('crear', { equipo: 'NONE', patente: 'X' }));
    await step('crear too large', store.trips.step('crear', { equipo: 'CAM-1', patente: 'X', conductor: 'é'.repeat(600_000) }));
    await step('actualizar', store.trips.step('actualizar', { id_movimiento: 1, conductor: 'Eva', carga: 'cobre' }));
    await step('illegal', store.trips.step('finalizar', { id_movimiento: 1 }));
    await step('finalizar-carga', store.trips.step('finalizar-carga', { IdMovimiento: 1 }));
    await step('crear 2', store.trips.step('crear', { equipo: 'CAM-1', patente: 'CD-34' }));
    await step('trips', store.trips.list(0, 10));
    await step('trip', store.trips.get(1));
    await step('publish', store.outbox.publish('alerts', '{"z":1,"type":"alert","a":2}'));
    const byPosition = (a: LogRow, b: LogRow) => (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : a.offset - b.offset);
    out.push(['log', (await logged(store)).sort(byPosition)]);
    const rows = (await store.outbox.claim('node-a', 60_000, 100)).sort(byPosition);
    out.push(['claimed', rows]);
    await step('dead', store.deadLetters.move(rows[1], 'reason ✓'));
    await step('dead page', store.deadLetters.page(0, 10));
    await step('count', store.outbox.count());
    return JSON.stringify(out, null, 1).replace(ISO, '<time>').replace(EPOCH_MS, '"$1": <ms>');
  }

  it('for the same calls: results, refusals, events and their field order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'store-compare-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const sqlite = openSqliteStore(dir, DEFAULT_MAX_JSON_DEPTH);
    onTestFinished(() => sqlite.close());
    const postgres = new PostgresStore(pool(await freshDatabase()), { maxJsonDepth: DEFAULT_MAX_JSON_DEPTH, node: 'node-a' });
    onTestFinished(() => postgres.close());
    const expected = await script(sqlite);
    expect(expected).toContain('GW_ERR_TRIP_TRANSITION');
    expect(await script(postgres)).toBe(expected);
  });
});

describe('the outbox lease across nodes (PostgreSQL only: SQLite has one node)', () => {
  const DEPTH = DEFAULT_MAX_JSON_DEPTH;
  const node = (url: string, name: string, leaseMs: number) => {
    const store = new PostgresStore(pool(url), { maxJsonDepth: DEPTH, node: name, leaseMs });
    onTestFinished(() => store.close());
    return store;
  };

  it("B claims none of A's rows while A's lease holds; once it lapses, all of them, taken over, at their first attempt", async () => {
    const url = await freshDatabase();
    const a = node(url, 'node-a', 400);
    const b = node(url, 'node-b', 400);
    for (let i = 1; i <= 5; i++) await a.outbox.publish('c', JSON.stringify({ type: 'e', i }));
    const admin = pool(url);
    onTestFinished(() => admin.end());
    const lease = async () =>
      (
        await admin.query<{ held: number; by: string[]; ms: number }>(
          'SELECT count(*) FILTER (WHERE claimed_until > now())::int AS held, array_agg(DISTINCT claimed_by) AS by, ceil(extract(epoch FROM max(claimed_until) - now()) * 1000)::int AS ms FROM outbox',
        )
      ).rows[0];
    expect(await b.outbox.claim('node-b', 60_000, 10)).toEqual([]);
    const held = await lease();
    expect([held.held, held.by]).toEqual([5, ['node-a']]); // the claim came while every row was A's
    await new Promise((r) => setTimeout(r, held.ms + 20)); // the lease's end, on the database's clock
    const taken = await b.outbox.claim('node-b', 60_000, 10);
    expect(taken.map((r) => [r.offset, r.attempts, r.takenOver, JSON.parse(r.event).i])).toEqual([1, 2, 3, 4, 5].map((i) => [i, 1, true, i]));
    expect(await a.outbox.claim('node-a', 60_000, 10)).toEqual([]); // B's lease now, even against their writer
    expect((await lease()).by).toEqual(['node-b']);
    await b.outbox.published(taken);
    expect(await a.outbox.count()).toBe(0);
  });

  it("A's own rows go to A at once, not taken over; concurrent claims by A and B never return the same row", async () => {
    const url = await freshDatabase();
    const a = node(url, 'node-a', 60_000);
    const own = await (async () => {
      await a.outbox.publish('mine', '{"type":"e"}');
      return a.outbox.claim('node-a', 60_000, 10);
    })();
    expect(own.map((r) => [r.channel, r.attempts, r.takenOver])).toEqual([['mine', 1, undefined]]);

    // 300 rows whose writer's lease is already over, claimed 7 at a time by four claimers on each node at once.
    const writer = node(url, 'node-gone', 1);
    await Promise.all(Array.from({ length: 300 }, (_, i) => writer.outbox.publish(`ch${i % 3}`, JSON.stringify({ type: 'e', i }))));
    const b = node(url, 'node-b', 60_000);
    await new Promise((r) => setTimeout(r, 5)); // past the 1 ms lease
    const got = new Map<string, string[]>();
    const claimer = async (store: PostgresStore, name: string) => {
      for (;;) {
        const rows = await store.outbox.claim(name, 60_000, 7);
        if (rows.length === 0) return;
        for (const r of rows) got.set(`${r.channel}/${r.offset}`, [...(got.get(`${r.channel}/${r.offset}`) ?? []), name]);
      }
    };
    await Promise.all([a, a, a, a, b, b, b, b].map((store) => claimer(store, store === a ? 'node-a' : 'node-b')));
    expect(got.size).toBe(300);
    expect([...got].filter(([, by]) => by.length > 1)).toEqual([]);
    const byA = [...got.values()].filter(([by]) => by === 'node-a').length;
    expect(byA, 'both nodes claimed').toBeGreaterThan(0);
    expect(byA).toBeLessThan(300);
  });
});
