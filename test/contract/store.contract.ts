/**
 * The store's contract (src/store/store.ts): what every driver must do, as the store pool task uses
 * it. A driver's test file calls `storeContract(name, makeStore)`; `makeStore` gives a fresh, empty
 * store and a way to open another connection to the same data (another pool thread, another node),
 * so ids, concurrency and durability are checked across connections, not only within one.
 *
 * Runs on the source modules (no pool, no threads): the store is a library here.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CHANNELS, parseChannelsConfig, type CollectionSpec } from '../../src/features/channels/channel-config.js';
import { entityEventJson } from '../../src/features/channels/channel-event.js';
import { MAX_EVENT_BYTES } from '../../src/features/channels/outbox-event.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../../src/protocol/bounded-json.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import type { ErrorCode } from '../../src/errors/error-codes.js';
import type { LogRow, OutboxEvent, Store } from '../../src/store/store.js';

export interface StoreFixture {
  /** A fresh, empty store (its schema in place). */
  readonly store: Store;
  /** Another driver instance on the same data, as another pool thread or node would open it. */
  open(): Promise<Store>;
  /** Closes `store` (close() is harmless twice) and removes the data. */
  dispose(): Promise<void>;
  /**
   * Makes every insert into the outbox fail (a database-side fault: a trigger), as a full disk or
   * a broken constraint would; the returned function undoes it.
   */
  failOutboxInserts(): Promise<() => Promise<void>>;
}

export type MakeStore = (options: { readonly maxJsonDepth: number }) => Promise<StoreFixture>;

const collections = parseChannelsConfig(DEFAULT_CHANNELS, { historySize: 1000, historyTtlS: 3600 }, 'extraccion').collections;
const collection = (path: string): CollectionSpec => collections.find((c) => c.path === path)!;
const SENSORES = collection('sensores');
const PETS = collection('pets');

/** Rejects with a GatewayError of `code`. */
async function refused(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  const err = await promise.then(
    () => new Error('expected a refusal'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  expect((err as GatewayError).code).toBe(code);
  if (message) expect((err as GatewayError).message).toMatch(message);
}

/**
 * A write's event as the contract compares it: its channel. The row a driver may hand on with it
 * (`logged`, ingest's local fast path: SQLite) must be the log's own row at that offset.
 */
async function eventOf(store: Store, event: OutboxEvent | null): Promise<{ channel: string } | null> {
  if (event === null) return null;
  if (event.logged !== undefined) {
    expect(store.backend).toBe('sqlite');
    expect(event.logged.channel).toBe(event.channel);
    expect(await store.log.range(event.channel, event.logged.offset, event.logged.offset, 1)).toEqual([event.logged]);
  }
  return { channel: event.channel };
}

const nested = (depth: number): unknown => (depth === 0 ? 1 : { n: nested(depth - 1) });

/** Every event in the store's log, oldest first (by time, then channel and offset). */
export async function logged(store: Store): Promise<LogRow[]> {
  const rows: LogRow[] = [];
  for (const [channel, head] of await store.log.heads()) rows.push(...(await store.log.range(channel, 1, head, 100_000)));
  return rows.sort((a, b) => a.at - b.at || (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : a.offset - b.offset));
}

interface EntityEvent {
  readonly type: string;
  readonly entity_type: string;
  readonly event_type: string;
  readonly entity_id: number;
  readonly data: Record<string, unknown>;
  readonly metadata: Record<string, unknown>;
}

export function storeContract(name: string, makeStore: MakeStore): void {
  describe(`store contract: ${name}`, () => {
    let fixture: StoreFixture | undefined;
    const opened: Store[] = [];

    async function fresh(): Promise<Store> {
      fixture = await makeStore({ maxJsonDepth: DEFAULT_MAX_JSON_DEPTH });
      return fixture.store;
    }

    async function another(): Promise<Store> {
      const store = await fixture!.open();
      opened.push(store);
      return store;
    }

    /** Every logged event, oldest first (by time, then channel and offset), with its event parsed. */
    async function outbox(store: Store): Promise<{ offset: number; channel: string; event: EntityEvent }[]> {
      const rows = await logged(store);
      return rows.map((r) => ({ offset: r.offset, channel: r.channel, event: JSON.parse(r.event) as EntityEvent }));
    }

    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
      await fixture?.dispose();
      fixture = undefined;
    });

    it('names its backend and answers ping', async () => {
      const store = await fresh();
      expect(['sqlite', 'postgres']).toContain(store.backend);
      await store.ping();
    });

    describe('entities', () => {
      it('creates, reads, updates and deletes, each write with its event in the outbox', async () => {
        const store = await fresh();
        const { entity, event } = await store.entities.create(SENSORES, { tipo: 'temp', descripcion: 'a', zona: 1 });
        expect(event.channel).toBe('sensors');
        expect(Object.keys(entity)).toEqual(['id', 'tipo', 'descripcion', 'zona', 'created_at', 'updated_at']);
        expect(entity).toMatchObject({ id: 1, tipo: 'temp', descripcion: 'a', zona: 1 });
        expect(entity.created_at).toBe(entity.updated_at);
        expect(await store.entities.get(SENSORES, 1)).toEqual(entity);
        expect(await store.entities.get(SENSORES, 2)).toBeNull();

        const updated = await store.entities.update(SENSORES, 1, { descripcion: 'b', zona: null, nuevo: [1, 2] });
        expect(updated?.updatedFields).toEqual(['descripcion', 'zona', 'nuevo']);
        expect(await eventOf(store, updated!.event)).toEqual({ channel: 'sensors' });
        expect(Object.keys(updated!.entity)).toEqual(['id', 'tipo', 'descripcion', 'nuevo', 'created_at', 'updated_at']);
        expect(await store.entities.get(SENSORES, 1)).toEqual(updated!.entity);

        const same = await store.entities.update(SENSORES, 1, { descripcion: 'b', tipo: 'temp' });
        expect(same).toEqual({ entity: updated!.entity, updatedFields: [], event: null });
        expect(await store.entities.update(SENSORES, 99, { descripcion: 'x' })).toBeNull();

        const deleted = await store.entities.delete(SENSORES, 1);
        expect({ ...deleted, event: await eventOf(store, deleted!.event) }).toEqual({ entity: updated!.entity, event: { channel: 'sensors' } });
        expect(await store.entities.get(SENSORES, 1)).toBeNull();
        expect(await store.entities.delete(SENSORES, 1)).toBeNull();

        const rows = await outbox(store);
        expect(rows.map((r) => [r.channel, r.event.event_type, r.event.entity_id])).toEqual([
          ['sensors', 'created', 1],
          ['sensors', 'updated', 1],
          ['sensors', 'deleted', 1],
        ]);
        expect(rows[1].event.metadata).toEqual({ action: 'update_sensor', fields_updated: ['descripcion', 'zona', 'nuevo'] });
        expect(rows[1].event.data.updated_fields).toEqual(['descripcion', 'zona', 'nuevo']);
        expect(rows.map((r) => r.offset)).toEqual([1, 2, 3]);
        expect(await store.outbox.count()).toBe(3);
      });

      it('keeps a field named __proto__ as data, never as a prototype', async () => {
        const store = await fresh();
        const fields = JSON.parse('{"__proto__":{"polluted":true},"tipo":"x"}') as Record<string, unknown>;
        await store.entities.create(SENSORES, { tipo: 'x' });
        const updated = await store.entities.update(SENSORES, 1, fields);
        expect(updated?.updatedFields).toEqual(['__proto__']);
        const read = await store.entities.get(SENSORES, 1);
        expect(Object.hasOwn(read!, '__proto__')).toBe(true);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      });

      it('lists in id order, pages with skip and limit, one collection at a time', async () => {
        const store = await fresh();
        for (let i = 1; i <= 7; i++) await store.entities.create(SENSORES, { n: i });
        await store.entities.create(PETS, { name: 'rex' });
        await store.entities.delete(SENSORES, 3);
        const ids = (list: Record<string, unknown>[], field = 'id') => list.map((e) => e[field]);
        expect(ids(await store.entities.list(SENSORES, 0, 100))).toEqual([1, 2, 4, 5, 6, 7]);
        expect(ids(await store.entities.list(SENSORES, 0, 2))).toEqual([1, 2]);
        expect(ids(await store.entities.list(SENSORES, 2, 2))).toEqual([4, 5]);
        expect(ids(await store.entities.list(SENSORES, 6, 2))).toEqual([]);
        expect(await store.entities.list(PETS, 0, 100)).toEqual([expect.objectContaining({ pet_id: 1, name: 'rex' })]);
        expect(await store.entities.list(collection('payments'), 0, 100)).toEqual([]);
      });

      it('never reuses an id: not after a delete, not on another connection, not after a reopen', async () => {
        const store = await fresh();
        for (let i = 0; i < 3; i++) await store.entities.create(SENSORES, { n: i });
        await store.entities.delete(SENSORES, 3);
        expect((await store.entities.create(SENSORES, { n: 3 })).entity.id).toBe(4);
        await store.entities.delete(SENSORES, 4);
        const other = await another();
        expect((await other.entities.create(SENSORES, { n: 4 })).entity.id).toBe(5);
        expect((await other.entities.create(PETS, { n: 0 })).entity.pet_id).toBe(1); // one sequence per collection
        await store.close();
        const reopened = await another();
        await reopened.entities.delete(SENSORES, 5);
        expect((await reopened.entities.create(SENSORES, { n: 5 })).entity.id).toBe(6);
      });

      it('gives concurrent creates on two connections distinct ids, each with its own event', async () => {
        const store = await fresh();
        const other = await another();
        const creates = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? store : other).entities.create(SENSORES, { n: i }));
        const ids = (await Promise.all(creates)).map((r) => r.entity.id as number);
        expect(new Set(ids).size).toBe(40);
        expect([...ids].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
        const events = await outbox(store);
        expect(events.map((r) => r.event.entity_id).sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
      });

      it('writes neither the entity nor its event when the event is refused, and takes no id', async () => {
        const store = await fresh();
        await store.entities.create(SENSORES, { n: 1 });
        const deep = nested(DEFAULT_MAX_JSON_DEPTH + 2) as Record<string, unknown>;
        await refused(store.entities.create(SENSORES, { deep }), 'GW_ERR_BODY_INVALID', /created event of sensores 2/);
        await refused(store.entities.update(SENSORES, 1, { deep }), 'GW_ERR_BODY_INVALID', /updated event of sensores 1/);
        expect(await store.entities.list(SENSORES, 0, 100)).toEqual([expect.objectContaining({ id: 1, n: 1 })]);
        expect(Object.keys((await store.entities.get(SENSORES, 1))!)).not.toContain('deep');
        expect(await store.outbox.count()).toBe(1);
        expect((await store.entities.create(SENSORES, { n: 2 })).entity.id).toBe(2);
        expect(await store.outbox.count()).toBe(2);
      });
      it('writes the created event byte for byte as built from the entity: with an id field of its own, and at the size limit', async () => {
        const store = await fresh();
        const now = new Date().toISOString();
        const expected = (id: number, data: Record<string, unknown>, timestamp: string) =>
          entityEventJson({ entityType: SENSORES.entityType, action: 'created', entityId: id, data, timestamp, metadata: { action: 'create_sensor' } });
        const lastPayload = async () => (await logged(store)).at(-1)!.event;
        const timestampOf = (payload: string) => (JSON.parse(payload) as { timestamp: string }).timestamp;

        const own = await store.entities.create(SENSORES, { id: 99, n: 1 }); // an id of its own wins in the data, as on SQLite
        expect(own.entity).toMatchObject({ id: 99, n: 1 });
        let payload = await lastPayload();
        expect(payload).toBe(expected(1, own.entity, timestampOf(payload)));

        // An event of exactly MAX_EVENT_BYTES is written; one byte more is refused and takes no id.
        const pad = (bytes: number) => ({ pad: 'x'.repeat(bytes) });
        const base = Buffer.byteLength(expected(2, { id: 2, ...pad(0), created_at: now, updated_at: now }, now));
        const full = await store.entities.create(SENSORES, pad(MAX_EVENT_BYTES - base));
        payload = await lastPayload();
        expect(Buffer.byteLength(payload)).toBe(MAX_EVENT_BYTES);
        expect(payload).toBe(expected(2, full.entity, timestampOf(payload)));
        await refused(store.entities.create(SENSORES, pad(MAX_EVENT_BYTES - base + 1)), 'GW_ERR_BODY_TOO_LARGE', /created event of sensores 3 /);
        expect((await store.entities.create(SENSORES, { n: 3 })).entity.id).toBe(3);
        expect(await store.outbox.count()).toBe(3);
      });
    });

    describe('concurrent writers and failed writes', () => {
      it('gives concurrent creates from two stores, 8 writers each, distinct ids per collection, each event matching its entity', async () => {
        const store = await fresh();
        const other = await another();
        const writer = async (s: Store, w: number) => {
          const made: { path: string; id: number }[] = [];
          for (let i = 0; i < 12; i++) {
            const c = i % 3 === 0 ? PETS : SENSORES;
            const { entity } = await s.entities.create(c, { w, i });
            made.push({ path: c.path, id: entity[c.idField] as number });
          }
          return made;
        };
        const made = (await Promise.all(Array.from({ length: 16 }, (_, w) => writer(w % 2 ? store : other, w)))).flat();
        for (const c of [SENSORES, PETS]) {
          const ids = made.filter((m) => m.path === c.path).map((m) => m.id);
          expect(new Set(ids).size).toBe(ids.length);
          const listed = await store.entities.list(c, 0, 1000);
          expect(listed.map((e) => e[c.idField]).sort((a, b) => (a as number) - (b as number))).toEqual([...ids].sort((a, b) => a - b));
          const events = (await outbox(store)).filter((r) => r.event.entity_type === c.entityType);
          expect(events.map((r) => r.event.entity_id).sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
          for (const r of events) {
            const entity = listed.find((e) => e[c.idField] === r.event.entity_id)!;
            expect(r.event.data).toEqual(entity);
          }
        }
      });

      it('loses no field when two stores update one entity at once, and reports each change once', async () => {
        const store = await fresh();
        const other = await another();
        await store.entities.create(SENSORES, { tipo: 't' });
        const updates = Array.from({ length: 20 }, (_, i) => (i % 2 ? store : other).entities.update(SENSORES, 1, { [`f${i}`]: i }));
        const results = await Promise.all(updates);
        expect(results.map((r) => r?.updatedFields)).toEqual(Array.from({ length: 20 }, (_, i) => [`f${i}`]));
        const final = (await store.entities.get(SENSORES, 1))!;
        for (let i = 0; i < 20; i++) expect(final[`f${i}`]).toBe(i);
        const events = (await outbox(store)).filter((r) => r.event.event_type === 'updated');
        expect(events.map((r) => r.event.metadata.fields_updated).sort()).toEqual(Array.from({ length: 20 }, (_, i) => [`f${i}`]).sort());
      });

      it('lets only one of two stores take a trip step at once; the other is refused as a transition', async () => {
        const store = await fresh();
        const other = await another();
        await store.equipment.save([{ code: 'CAM-1', kind: 'truck', active: true, description: null }]);
        await store.trips.step('crear', { equipo: 'CAM-1', patente: 'AB-12' });
        const both = await Promise.allSettled([store, other].map((s) => s.trips.step('finalizar-carga', { id_movimiento: 1 })));
        expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
        const refusal = both.find((r) => r.status === 'rejected')!.reason as GatewayError;
        expect(refusal).toBeInstanceOf(GatewayError);
        expect(refusal.code).toBe('GW_ERR_TRIP_TRANSITION');
        expect(await store.outbox.count()).toBe(2);
      });

      it('leaves no entity, no trip and no id taken when the outbox insert fails', async () => {
        const store = await fresh();
        await store.equipment.save([{ code: 'CAM-1', kind: 'truck', active: true, description: null }]);
        await store.entities.create(SENSORES, { n: 1 });
        await store.trips.step('crear', { equipo: 'CAM-1', patente: 'AB-12' });
        const entityBefore = await store.entities.get(SENSORES, 1);
        const tripBefore = await store.trips.get(1);
        const restore = await fixture!.failOutboxInserts();
        const failed = async (p: Promise<unknown>) =>
          expect(
            await p.then(
              () => 'written',
              () => 'failed',
            ),
          ).toBe('failed');
        await failed(store.entities.create(SENSORES, { n: 2 }));
        await failed(store.entities.update(SENSORES, 1, { n: 9 }));
        await failed(store.entities.delete(SENSORES, 1));
        await failed(store.trips.step('crear', { equipo: 'CAM-1', patente: 'CD-34' }));
        await failed(store.trips.step('finalizar-carga', { id_movimiento: 1 }));
        await failed(store.outbox.publish('alerts', '{"type":"alert"}'));
        await restore();
        expect(await store.entities.list(SENSORES, 0, 100)).toEqual([entityBefore]);
        expect(await store.trips.list(0, 100)).toEqual([tripBefore]);
        expect(await store.outbox.count()).toBe(2);
        expect((await store.entities.create(SENSORES, { n: 2 })).entity.id).toBe(2);
        expect((await store.trips.step('crear', { equipo: 'CAM-1', patente: 'CD-34' })).body.id).toBe(2);
      });
    });

    describe('channel log, outbox and dead letters', () => {
      it('logs a published event as given, after checking it, at the next offset of its channel', async () => {
        const store = await fresh();
        expect(await eventOf(store, await store.outbox.publish('alerts', '{"type":"alert","level":2}'))).toEqual({ channel: 'alerts' });
        await refused(store.outbox.publish('alerts', JSON.stringify(nested(DEFAULT_MAX_JSON_DEPTH + 2))), 'GW_ERR_EVENT_INVALID');
        await store.outbox.publish('alerts', '{"type":"alert","level":3}');
        await store.outbox.publish('other', '{"type":"x"}');
        expect(await store.log.heads()).toEqual(
          new Map([
            ['alerts', 2],
            ['other', 1],
          ]),
        );
        expect(await store.log.range('alerts', 1, 9, 10)).toEqual([
          { channel: 'alerts', offset: 1, at: expect.any(Number) as number, event: '{"type":"alert","level":2}' },
          { channel: 'alerts', offset: 2, at: expect.any(Number) as number, event: '{"type":"alert","level":3}' },
        ]);
        expect((await store.log.range('alerts', 2, 2, 10)).map((r) => r.offset)).toEqual([2]);
        expect(await store.log.range('alerts', 1, 9, 1)).toHaveLength(1);
        expect((await store.log.recent('alerts', 1, 0)).map((r) => r.offset)).toEqual([2]);
        expect(await store.log.recent('alerts', 0, Date.now() + 60_000)).toEqual([]);
        expect(await store.outbox.count()).toBe(3);
      });

      it('has one epoch for the whole store, the same on every connection and after a reopen', async () => {
        const store = await fresh();
        const epoch = await store.log.epoch();
        expect(epoch).toMatch(/^[0-9a-f]{12}$/);
        expect(await (await another()).log.epoch()).toBe(epoch);
      });

      it('numbers each channel without holes under concurrent writers on two connections, in commit order', async () => {
        const store = await fresh();
        const other = await another();
        const writes = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? store : other).outbox.publish('busy', JSON.stringify({ type: 'e', i })));
        await Promise.all(writes);
        const rows = await store.log.range('busy', 1, 100, 100);
        expect(rows.map((r) => r.offset)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
        expect(new Set(rows.map((r) => (JSON.parse(r.event) as { i: number }).i)).size).toBe(40);
      });

      it('claims rows once, deletes them when published, and trims the log but never a row still in the outbox', async () => {
        const store = await fresh();
        for (let i = 1; i <= 4; i++) await store.outbox.publish('c', JSON.stringify({ type: 'e', i }));
        const claimed = await store.outbox.claim('node-a', 60_000, 10);
        expect(claimed.map((r) => [r.channel, r.offset, r.attempts, JSON.parse(r.event).i])).toEqual([
          ['c', 1, 1, 1],
          ['c', 2, 1, 2],
          ['c', 3, 1, 3],
          ['c', 4, 1, 4],
        ]);
        expect(await store.outbox.claim('node-a', 60_000, 10)).toEqual([]); // leased
        await store.outbox.published(claimed.slice(0, 2));
        expect(await store.outbox.count()).toBe(2);
        expect(await store.log.trim('c', 4, 0)).toBe(2); // 1 and 2; 3 and 4 are still in the outbox
        expect((await store.log.range('c', 1, 9, 10)).map((r) => r.offset)).toEqual([3, 4]);
        await store.outbox.published(claimed.slice(2));
        expect(await store.log.trim('c', 3, 0)).toBe(1);
        expect(await store.log.trim('c', 0, Date.now() + 1)).toBe(1); // by age
        expect(await store.log.heads()).toEqual(new Map([['c', 4]])); // the head stays
        await store.outbox.publish('c', '{"type":"e","i":5}');
        expect((await store.log.range('c', 1, 9, 10)).map((r) => r.offset)).toEqual([5]);
      });

      it('gives a row whose lease lapsed to the next claimer, with its attempts counted', async () => {
        const store = await fresh();
        await store.outbox.publish('c', '{"type":"e"}');
        const [first] = await store.outbox.claim('node-a', 1, 10);
        expect(first.attempts).toBe(1);
        await new Promise((r) => setTimeout(r, 20));
        const [again] = await store.outbox.claim('node-a', 60_000, 10);
        expect([again.offset, again.attempts]).toEqual([1, 2]);
      });

      it('moves outbox rows to the dead letters with their event and lists them oldest first, paged, without the event', async () => {
        const store = await fresh();
        for (let i = 0; i < 4; i++) await store.outbox.publish(`ch${i}`, JSON.stringify({ type: 'e', i }));
        const rows = await store.outbox.claim('node-a', 60_000, 10);
        expect(await store.deadLetters.count()).toBe(0);
        expect(await store.deadLetters.page(0, 10)).toEqual([]);
        expect(await store.deadLetters.move(rows[2], 'refused: not JSON')).toBe(true);
        expect(await store.deadLetters.move(rows[0], 'x'.repeat(600))).toBe(true);
        expect(await store.deadLetters.move(rows[0], 'again')).toBe(false);
        expect(await store.deadLetters.move({ channel: 'ch0', offset: 99 }, 'no such row')).toBe(false);
        expect(await store.outbox.count()).toBe(2);
        expect(await store.deadLetters.count()).toBe(2);
        const page = await store.deadLetters.page(0, 10);
        expect(page.map((d) => [d.channel, d.offset, d.bytes])).toEqual([
          ['ch2', 1, Buffer.byteLength(rows[2].event)],
          ['ch0', 1, Buffer.byteLength(rows[0].event)],
        ]);
        expect(page[0].id).toBeLessThan(page[1].id);
        expect(page[1].reason).toBe('x'.repeat(500));
        expect(page[0].reason).toBe('refused: not JSON');
        for (const d of page) {
          expect(Number.isSafeInteger(d.created_at) && Number.isSafeInteger(d.dead_at)).toBe(true);
          expect(d.dead_at).toBeGreaterThanOrEqual(d.created_at);
          expect(Object.keys(d).sort()).toEqual(['bytes', 'channel', 'created_at', 'dead_at', 'id', 'offset', 'reason']);
        }
        expect((await store.deadLetters.page(1, 10)).map((d) => d.channel)).toEqual(['ch0']);
        expect(await store.deadLetters.page(0, 1)).toHaveLength(1);
        expect((await store.log.range('ch2', 1, 1, 1)).map((r) => r.offset)).toEqual([1]); // the event stays in the log
      });
    });

    describe('positions', () => {
      it("keeps each device's newest position, its payload as given, and lists the recent ones oldest first", async () => {
        const store = await fresh();
        const batch = (rows: [string, string, string, number][]) =>
          `[${rows.map(([id, payload, ts, at]) => `[${JSON.stringify(id)},${payload},${JSON.stringify(ts)},${at}]`).join(',')}]`;
        await store.positions.putJson(
          batch([
            ['D-1', '{"LAT":1,"LON":2}', '2026-01-01T00:00:01.000Z', 1_000],
            ['D-2', '{"z":1,"a":2}', '2026-01-01T00:00:02.000Z', 2_000],
          ]),
        );
        // D-1 newer, D-2 older than what is kept: only D-1 changes.
        await store.positions.putJson(
          batch([
            ['D-1', '{"LAT":3,"LON":4}', '2026-01-01T00:00:03.000Z', 3_000],
            ['D-2', '{"stale":true}', '2026-01-01T00:00:00.500Z', 500],
          ]),
        );
        expect(await store.positions.recent(0)).toEqual([
          { deviceId: 'D-2', payload: '{"z":1,"a":2}', timestamp: '2026-01-01T00:00:02.000Z', at: 2_000 },
          { deviceId: 'D-1', payload: '{"LAT":3,"LON":4}', timestamp: '2026-01-01T00:00:03.000Z', at: 3_000 },
        ]);
        expect((await store.positions.recent(2_500)).map((p) => p.deviceId)).toEqual(['D-1']);
        await store.positions.putJson('[]');
      });

      it('purges the positions accepted before a time; an older `at` never overwrites, across connections', async () => {
        const store = await fresh();
        const other = await another();
        const row = (id: string, at: number, speed: number) => `[${JSON.stringify(id)},{"SPEED":${speed}},"${new Date(at).toISOString()}",${at}]`;
        await store.positions.putJson(`[${row('OLD', 1_000, 1)},${row('MID', 2_000, 2)},${row('NEW', 3_000, 3)}]`);
        await other.positions.putJson(`[${row('NEW', 2_500, 9)}]`); // another node's older copy
        expect(await store.positions.purge(2_000)).toBe(1);
        expect(await store.positions.purge(2_000)).toBe(0);
        expect((await other.positions.recent(0)).map((p) => [p.deviceId, p.payload])).toEqual([
          ['MID', '{"SPEED":2}'],
          ['NEW', '{"SPEED":3}'],
        ]);
        expect(await other.positions.purge(Number.MAX_SAFE_INTEGER)).toBe(2);
        expect(await store.positions.recent(0)).toEqual([]);
      });
    });

    describe('revocations', () => {
      const later = () => Date.now() + 600_000;

      it('keeps a revocation once however often it is written, on any connection', async () => {
        const store = await fresh();
        const other = await another();
        const expiresAt = later();
        const before = Date.now();
        await store.revocations.revoke('jti-1', expiresAt);
        const [first] = await store.revocations.active(0);
        expect(first).toEqual({ jti: 'jti-1', expiresAt, revokedAt: expect.any(Number) as number });
        expect(Number.isSafeInteger(first.revokedAt)).toBe(true);
        expect(first.revokedAt).toBeGreaterThanOrEqual(before - 1_000); // the store's clock, on this host
        expect(first.revokedAt).toBeLessThanOrEqual(Date.now() + 1_000);
        await store.revocations.revoke('jti-1', expiresAt);
        await other.revocations.revoke('jti-1', expiresAt + 5_000); // another node's copy changes nothing
        expect(await other.revocations.active(0)).toEqual([first]);
      });

      it('lists only the unexpired ones, oldest first, and purges the expired', async () => {
        const store = await fresh();
        const now = Date.now();
        await store.revocations.revoke('gone', now - 1_000);
        await store.revocations.revoke('kept', later());
        await store.revocations.revoke('also-gone', now - 10);
        expect((await store.revocations.active(0)).map((r) => r.jti)).toEqual(['kept']);
        expect(await store.revocations.purgeExpired(now)).toBe(2);
        expect(await store.revocations.purgeExpired(now)).toBe(0);
        expect((await store.revocations.active(0)).map((r) => r.jti)).toEqual(['kept']);
        expect(await store.revocations.purgeExpired(later() + 1)).toBe(1);
        expect(await store.revocations.active(0)).toEqual([]);
      });

      it('lists those written at or after a time, for the catch-up of a node that missed them', async () => {
        const store = await fresh();
        const other = await another();
        await store.revocations.revoke('a', later());
        const [a] = await store.revocations.active(0);
        // Wait for the store's clock (this host's) to pass a's time, so b is written later.
        while (Date.now() <= a.revokedAt + 1) await new Promise((resolve) => setImmediate(resolve));
        await other.revocations.revoke('b', later());
        const both = await store.revocations.active(0);
        expect(both.map((r) => r.jti)).toEqual(['a', 'b']);
        const b = both[1];
        expect(b.revokedAt).toBeGreaterThan(a.revokedAt);
        expect((await store.revocations.active(a.revokedAt)).map((r) => r.jti)).toEqual(['a', 'b']);
        expect((await store.revocations.active(a.revokedAt + 1)).map((r) => r.jti)).toEqual(['b']);
        expect((await other.revocations.active(b.revokedAt)).map((r) => r.jti)).toEqual(['b']);
        expect(await store.revocations.active(b.revokedAt + 1)).toEqual([]);
      });
    });

    describe('azure user groups', () => {
      const bounds = { perUser: 3, max: 5 };

      it('keeps a relation once, on any connection, until it is removed', async () => {
        const store = await fresh();
        const other = await another();
        expect(await store.azureUserGroups.list()).toEqual([]);
        expect(await store.azureUserGroups.add('chat', 'u1', 'g1', bounds)).toBe(true);
        expect(await other.azureUserGroups.add('chat', 'u1', 'g1', bounds)).toBe(false); // another node's copy
        await store.azureUserGroups.add('chat', 'u1', 'g0', bounds);
        await store.azureUserGroups.add('other', 'u1', 'g1', bounds);
        await store.azureUserGroups.add('chat', 'u2', 'g1', bounds);
        expect(await other.azureUserGroups.list()).toEqual([
          { hub: 'chat', userId: 'u1', group: 'g0' },
          { hub: 'chat', userId: 'u1', group: 'g1' },
          { hub: 'chat', userId: 'u2', group: 'g1' },
          { hub: 'other', userId: 'u1', group: 'g1' },
        ]);
        expect(await other.azureUserGroups.remove('chat', 'u1', 'g1')).toBe(true);
        expect(await store.azureUserGroups.remove('chat', 'u1', 'g1')).toBe(false);
        expect(await store.azureUserGroups.removeUser('chat', 'u2')).toBe(1);
        expect(await store.azureUserGroups.removeUser('chat', 'nobody')).toBe(0);
        expect(await store.azureUserGroups.list()).toEqual([
          { hub: 'chat', userId: 'u1', group: 'g0' },
          { hub: 'other', userId: 'u1', group: 'g1' },
        ]);
      });

      it('refuses past its bounds per user of a hub and in all, writing nothing', async () => {
        const store = await fresh();
        for (const g of ['a', 'b', 'c']) await store.azureUserGroups.add('chat', 'u1', g, bounds);
        await expect(store.azureUserGroups.add('chat', 'u1', 'd', bounds)).rejects.toMatchObject({ code: 'GW_ERR_AZURE_USER_GROUPS_FULL' });
        expect(await store.azureUserGroups.add('chat', 'u1', 'a', bounds)).toBe(false); // one it has: no refusal
        await store.azureUserGroups.add('other', 'u1', 'd', bounds); // another hub: its own count
        await store.azureUserGroups.add('chat', 'u2', 'a', bounds);
        await expect(store.azureUserGroups.add('chat', 'u3', 'a', bounds)).rejects.toMatchObject({
          code: 'GW_ERR_AZURE_USER_GROUPS_FULL',
          message: expect.stringContaining('GATEWAY_AZURE_USER_GROUPS_MAX') as string,
        });
        expect((await store.azureUserGroups.list()).length).toBe(5);
        await store.azureUserGroups.removeUser('chat', 'u2');
        expect(await store.azureUserGroups.add('chat', 'u3', 'a', bounds)).toBe(true);
      });
    });

    describe('trip monitor', () => {
      it('reads the active equipment codes in code order and counts the trip events after a time', async () => {
        const store = await fresh();
        expect(await store.tripMonitor.activeEquipment()).toEqual([]);
        expect(await store.tripMonitor.eventsAfter(0)).toBe(0);
        await store.equipment.save([
          { code: 'PAL-1', kind: 'excavator', active: true, description: null },
          { code: 'CAM-2', kind: 'truck', active: true, description: null },
          { code: 'CAM-OFF', kind: 'truck', active: false, description: null },
          { code: 'CAM-10', kind: 'truck', active: true, description: null },
          { code: 'cam-3', kind: 'truck', active: true, description: null },
        ]);
        expect(await store.tripMonitor.activeEquipment()).toEqual(['CAM-10', 'CAM-2', 'PAL-1', 'cam-3']);
        const before = Date.now() - 1;
        await store.trips.step('crear', { equipo: 'CAM-2', patente: 'AB-12' });
        await store.trips.step('actualizar', { id_movimiento: 1, conductor: 'Eva' });
        await store.trips.step('actualizar', { id_movimiento: 1, conductor: 'Eva' }); // nothing changed: no event
        await refused(store.trips.step('finalizar', { id_movimiento: 1 }), 'GW_ERR_TRIP_TRANSITION'); // refused: no event
        const other = await another();
        await other.trips.step('finalizar-carga', { id_movimiento: 1 });
        expect(await store.tripMonitor.eventsAfter(before)).toBe(3);
        expect(await other.tripMonitor.eventsAfter(0)).toBe(3);
        expect(await store.tripMonitor.eventsAfter(Date.now() + 1_000)).toBe(0);
      });
    });

    describe('nodes and presence', () => {
      const beat = (id: string, figures: unknown = {}) => ({ id, version: '1.2.3', startedAt: 1_700_000_000_000, figures: JSON.stringify(figures) });
      /** Long enough for a heartbeat of `ms` ago to be older than a TTL of `ms` on either clock. */
      const age = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms + 5));

      it('keeps one row per node, live while its heartbeat is younger than the TTL, seen from any connection', async () => {
        const store = await fresh();
        const other = await another();
        expect(await store.nodes.live(10_000)).toEqual([]);
        await store.nodes.beat(beat('b-node', { n: 1 }));
        await other.nodes.beat(beat('a-node'));
        await store.nodes.beat(beat('b-node', { n: 2 })); // an upsert: still one row
        const live = await other.nodes.live(10_000);
        expect(live.map((n) => n.id)).toEqual(['a-node', 'b-node']);
        const b = live[1];
        expect(b).toMatchObject({ version: '1.2.3', startedAt: 1_700_000_000_000, figures: '{"n":2}' });
        expect(b.ageMs).toBeGreaterThanOrEqual(0);
        expect(b.ageMs).toBeLessThan(5_000);
        expect(Math.abs(b.heartbeatAt - Date.now())).toBeLessThan(60_000); // the store's clock, near this one
        await age(30);
        expect(await store.nodes.live(30)).toEqual([]); // both stale at a 30 ms TTL
        await store.nodes.beat(beat('a-node'));
        expect((await store.nodes.live(30)).map((n) => n.id)).toEqual(['a-node']);
      });

      it('leave deletes the node and its presence; purge deletes stale nodes and orphaned presence', async () => {
        const store = await fresh();
        const other = await another();
        await store.nodes.beat(beat('a'));
        await store.nodes.beat(beat('b'));
        await store.nodes.putPresence('a', [['u1', 1]]);
        await store.nodes.putPresence('b', [['u2', 2]]);
        await store.nodes.putPresence('ghost', [['u3', 1]]); // a node with no row
        expect(await store.nodes.uniqueUsers(10_000, [])).toBe(2); // ghost's user is not counted
        await other.nodes.leave('b');
        expect((await store.nodes.live(10_000)).map((n) => n.id)).toEqual(['a']);
        expect(await store.nodes.uniqueUsers(10_000, [])).toBe(1);
        expect(await store.nodes.purge(10_000)).toBe(0); // nothing stale; ghost's row goes
        await store.nodes.beat(beat('ghost'));
        expect(await store.nodes.uniqueUsers(10_000, [])).toBe(1); // its presence was purged before it came back
        await age(30);
        await store.nodes.beat(beat('a'));
        expect(await other.nodes.purge(30)).toBe(1); // ghost
        expect((await store.nodes.live(10_000)).map((n) => n.id)).toEqual(['a']);
      });

      it('sets presence in batches (0 deletes), ignores nodes that are not live, and counts each user once', async () => {
        const store = await fresh();
        const other = await another();
        await store.nodes.beat(beat('a'));
        await other.nodes.beat(beat('b'));
        await store.nodes.putPresence('a', [
          ['alice', 2],
          ['bob', 1],
          ['carol', 1],
        ]);
        await other.nodes.putPresence('b', [
          ['alice', 1],
          ['dave', 3],
        ]);
        await store.nodes.putPresence('a', []); // nothing to write
        expect(await store.nodes.uniqueUsers(10_000, [])).toBe(4); // alice on both nodes counts once
        expect(await store.nodes.uniqueUsers(10_000, ['alice', 'erin'])).toBe(5); // `also` joins the union
        await store.nodes.putPresence('a', [
          ['carol', 0],
          ['bob', 5],
        ]);
        expect(await other.nodes.uniqueUsers(10_000, [])).toBe(3);
        await age(30);
        await other.nodes.beat(beat('b')); // a is stale at a 30 ms TTL: its rows no longer count
        expect(await store.nodes.uniqueUsers(30, [])).toBe(2);
        expect(await store.nodes.uniqueUsers(10_000, [])).toBe(3);
      });
    });

    describe('equipment', () => {
      it('upserts, lists by code, reads and removes', async () => {
        const store = await fresh();
        expect(await store.equipment.list()).toEqual([]);
        const saved = await store.equipment.save([
          { code: 'PAL-1', kind: 'excavator', active: true, description: 'pala' },
          { code: 'CAM-1', kind: 'truck', active: true, description: null },
        ]);
        expect(saved.map((e) => e.code)).toEqual(['PAL-1', 'CAM-1']);
        expect(saved[0].updated_at).toBe(saved[1].updated_at);
        expect(Object.keys(saved[0])).toEqual(['code', 'kind', 'active', 'description', 'updated_at']);
        expect((await store.equipment.list()).map((e) => e.code)).toEqual(['CAM-1', 'PAL-1']);
        expect(await store.equipment.get('CAM-1')).toEqual(saved[1]);
        expect(await store.equipment.get('NONE')).toBeNull();
        const [again] = await store.equipment.save([{ code: 'CAM-1', kind: 'truck', active: false, description: 'parked' }]);
        expect(await store.equipment.get('CAM-1')).toEqual(again);
        expect(again).toMatchObject({ active: false, description: 'parked' });
        expect(await store.equipment.remove('CAM-1')).toBe(true);
        expect(await store.equipment.remove('CAM-1')).toBe(false);
        expect((await store.equipment.list()).map((e) => e.code)).toEqual(['PAL-1']);
        expect(await store.outbox.count()).toBe(0); // equipment has no channel
      });
    });

    describe('trips', () => {
      async function withFleet(): Promise<Store> {
        const store = await fresh();
        await store.equipment.save([
          { code: 'CAM-1', kind: 'truck', active: true, description: null },
          { code: 'CAM-OFF', kind: 'truck', active: false, description: null },
          { code: 'PAL-1', kind: 'excavator', active: true, description: null },
        ]);
        return store;
      }

      it('walks the legal steps, each with its event on viajes', async () => {
        const store = await withFleet();
        const created = await store.trips.step('crear', { equipo: 'CAM-1', patente: 'AB-12', conductor: 'Ana' });
        expect({ ...created, event: await eventOf(store, created.event) }).toEqual({ body: { id: 1 }, event: { channel: 'viajes' } });
        const loaded = await store.trips.step('finalizar-carga', { id_movimiento: 1 });
        expect(loaded.body).toMatchObject({ IdMovimiento: 1, estado: 'carga_finalizada', Equipo: 'CAM-1', Patente: 'AB-12' });
        expect(typeof loaded.body.HoraFinCarga).toBe('string');
        const changed = await store.trips.step('actualizar', { id_movimiento: 1, conductor: 'Eva' });
        expect(changed.body).toMatchObject({ estado: 'carga_finalizada', Conductor: 'Eva' });
        expect(await eventOf(store, changed.event)).toEqual({ channel: 'viajes' });
        const unchanged = await store.trips.step('actualizar', { id_movimiento: 1, conductor: 'Eva' });
        expect(unchanged.event).toBeNull();
        await store.trips.step('en-descarga', { IdMovimiento: 1 });
        const done = await store.trips.step('finalizar', { id_movimiento: 1 });
        expect(done.body.estado).toBe('finalizado');
        expect(await store.trips.get(1)).toEqual(done.body);
        expect(await store.trips.get(2)).toBeNull();

        const rows = await outbox(store);
        expect(rows.map((r) => [r.channel, r.event.event_type, r.event.entity_id])).toEqual([
          ['viajes', 'ViajeCreado', 1],
          ['viajes', 'CargaFinalizada', 1],
          ['viajes', 'ViajeActualizado', 1],
          ['viajes', 'ViajeEnDescarga', 1],
          ['viajes', 'ViajeFinalizado', 1],
        ]);
      });

      it('refuses illegal transitions, unknown trips and unusable equipment, writing nothing', async () => {
        const store = await withFleet();
        await store.trips.step('crear', { equipo: 'CAM-1', patente: 'AB-12' });
        const before = await store.outbox.count();
        const trip = await store.trips.get(1);
        await refused(
          store.trips.step('en-descarga', { id_movimiento: 1 }),
          'GW_ERR_TRIP_TRANSITION',
          /creado: en-descarga is allowed only from carga_finalizada/,
        );
        await refused(store.trips.step('finalizar', { id_movimiento: 1 }), 'GW_ERR_TRIP_TRANSITION');
        await refused(store.trips.step('finalizar-carga', { id_movimiento: 7 }), 'GW_ERR_TRIP_NOT_FOUND', /No trip 7/);
        await refused(store.trips.step('crear', { equipo: 'NONE', patente: 'X' }), 'GW_ERR_EQUIPMENT_UNKNOWN', /no equipment "NONE"/);
        await refused(store.trips.step('crear', { equipo: 'CAM-OFF', patente: 'X' }), 'GW_ERR_EQUIPMENT_INACTIVE');
        await refused(store.trips.step('crear', { equipo: 'PAL-1', patente: 'X' }), 'GW_ERR_BODY_INVALID', /is a excavator, not a truck/);
        await refused(store.trips.step('crear', { equipo: 'CAM-1', patente: 'X', conductor: 'é'.repeat(600_000) }), 'GW_ERR_MESSAGE_TOO_LARGE');
        await refused(store.trips.step('actualizar', { id_movimiento: 1, conductor: 'é'.repeat(600_000) }), 'GW_ERR_MESSAGE_TOO_LARGE');
        await store.trips.step('cancelar', { id_movimiento: 1, motivo: 'lluvia' });
        await refused(store.trips.step('cancelar', { id_movimiento: 1 }), 'GW_ERR_TRIP_TRANSITION', /cancelado/);
        expect(await store.outbox.count()).toBe(before + 1);
        expect((await store.trips.get(1))?.estado).toBe('cancelado');
        expect((await store.trips.get(1))?.Conductor).toBe(trip?.Conductor);
        expect((await store.trips.list(0, 10)).map((t) => t.IdMovimiento)).toEqual([1]);
      });

      it('lists newest first, paged; ids distinct across connections and never reused', async () => {
        const store = await withFleet();
        const other = await another();
        const made = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? store : other).trips.step('crear', { equipo: 'CAM-1', patente: `P${i}` })));
        const ids = made.map((m) => m.body.id as number);
        expect(new Set(ids).size).toBe(6);
        await refused(store.trips.step('crear', { equipo: 'NONE', patente: 'X' }), 'GW_ERR_EQUIPMENT_UNKNOWN');
        const next = (await store.trips.step('crear', { equipo: 'CAM-1', patente: 'P6' })).body.id as number;
        expect(next).toBeGreaterThan(Math.max(...ids));
        const all = (await store.trips.list(0, 100)).map((t) => t.IdMovimiento as number);
        expect(all).toEqual([...ids, next].sort((a, b) => b - a));
        expect((await store.trips.list(2, 3)).map((t) => t.IdMovimiento)).toEqual(all.slice(2, 5));
        expect(await store.trips.list(100, 3)).toEqual([]);
      });
    });
  });
}
