/**
 * The outbox relay and the channel pipeline over a bus of the test's own (real SQLite store): the
 * bus here can drop, repeat or never acknowledge a message, which no broker does on demand. What
 * must hold whatever it does: every logged event reaches the edges once, in offset order (gaps
 * filled from the log, copies dropped), and no row is published forever.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { ChannelPipeline } from '../../src/features/channels/ingest/channel-pipeline.js';
import { OutboxRelay } from '../../src/features/channels/ingest/outbox-relay.js';
import { OUTBOX_MAX_ATTEMPTS } from '../../src/features/channels/store/dead-letters.js';
import type { ChannelEventRecord } from '../../src/features/channels/messages.js';
import { SharedStats } from '../../src/metrics/shared-stats.js';
import { openDatabase } from '../../src/store/database.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { IngestToEdge } from '../../src/threads/messages.js';

const TOPIC = 'gateway/channels';

interface BusRules {
  /** Never reaches the pipeline. */
  drop?: (payload: string) => boolean;
  /** Never acknowledged by the "broker". */
  noAck?: (payload: string) => boolean;
  /** Delivered twice. */
  twice?: boolean;
}

async function node(rules: BusRules = {}, leaseMs = 5_000, headPollMs = 0) {
  const dir = mkdtempSync(join(tmpdir(), 'channel-delivery-'));
  openDatabase(dir).close(); // created and at the current layout, as the main thread does at start
  const store = openSqliteStore(dir, 64);
  const shared = SharedStats.create(1);
  const stats = shared.ingestWriter();
  const logger = pino({ level: 'silent' });
  const delivered: ChannelEventRecord[] = [];
  let relay: OutboxRelay | undefined;
  const pipeline = new ChannelPipeline(
    loadConfig({}).events.channels,
    store,
    headPollMs,
    64,
    (m: IngestToEdge) => {
      if (m.t === 'channel-events') delivered.push(...m.events);
    },
    stats,
    logger,
    () => relay?.nudge(),
  );
  const init = await pipeline.init();
  const published: string[] = [];
  relay = new OutboxRelay(
    store.outbox,
    store.deadLetters,
    { nodeId: 'n1', epoch: init.epoch, topicPrefix: TOPIC, leaseMs },
    {
      connected: true,
      publish: (topic, payload, done) => {
        published.push(payload);
        const channel = topic.slice(TOPIC.length + 1);
        if (!rules.drop?.(payload)) {
          setImmediate(() => pipeline.handle(channel, Buffer.from(payload)));
          if (rules.twice) setImmediate(() => pipeline.handle(channel, Buffer.from(payload)));
        }
        if (!rules.noAck?.(payload)) setImmediate(() => done());
      },
    },
    stats,
    logger,
  );
  onTestFinished(async () => {
    await relay.stop();
    pipeline.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const write = async (type: string, channel = 'general') => {
    await store.outbox.publish(channel, JSON.stringify({ type: 'notification', notification_type: type, data: {} }));
    relay.nudge();
  };
  /** A write whose committed row is handed to the pipeline at once, as an edge does with the store pool's reply (the local fast path). */
  const writeLocal = async (type: string, channel = 'general') => {
    const event = await store.outbox.publish(channel, JSON.stringify({ type: 'notification', notification_type: type, data: {} }));
    if (event.logged === undefined) throw new Error('the SQLite store gave no logged row');
    return event.logged;
  };
  const seen = () => delivered.map((e) => [e.offset, JSON.parse(e.frames[0] as string).notification_type as string]);
  return { relay, pipeline, store, delivered, seen, write, writeLocal, shared, published, epoch: init.epoch, dir };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('delivery by offset', () => {
  it('delivers every event once, in offset order, when the bus delivers each twice; acknowledged rows leave the outbox', async () => {
    const n = await node({ twice: true });
    for (const type of ['a', 'b', 'c']) await n.write(type);
    await until('three events', () => n.delivered.length === 3);
    await until('an empty outbox', async () => (await n.store.outbox.count()) === 0);
    expect(n.seen()).toEqual([
      [1, 'a'],
      [2, 'b'],
      [3, 'c'],
    ]);
    expect(n.shared.getIngest('events_duplicates_total')).toBe(3);
    expect(n.published[0]).toMatch(new RegExp(`^\\{"position":\\{"offset":1,"epoch":"${n.epoch}","at":\\d+\\},"type":"notification"`));
  });

  it('a message the bus loses is read from the log before the next one is delivered: no hole, counted as a repair', async () => {
    const n = await node({ drop: (p) => p.includes('"lost"') });
    for (const type of ['a', 'lost', 'b']) await n.write(type);
    await until('three events', () => n.delivered.length === 3);
    expect(n.seen()).toEqual([
      [1, 'a'],
      [2, 'lost'],
      [3, 'b'],
    ]);
    expect(n.shared.getIngest('events_gaps_total')).toBe(1);
    expect(n.shared.getIngest('events_gap_repaired_total')).toBe(1);
  });

  it('the last message lost, with nothing after it to reveal the gap, is found by the head poll', async () => {
    const n = await node({ drop: (p) => p.includes('"last"') }, 5_000, 30);
    await n.write('a');
    await n.write('last');
    await until('both events', () => n.delivered.length === 2);
    expect(n.seen()).toEqual([
      [1, 'a'],
      [2, 'last'],
    ]);
    expect(n.shared.getIngest('events_head_poll_repairs_total')).toBeGreaterThanOrEqual(1);
  });

  it('offsets trimmed from the log before this node read them are passed over and counted, never waited for', async () => {
    const n = await node({ drop: (p) => p.includes('"gone') });
    await n.write('a');
    await until('the first', () => n.delivered.length === 1);
    await n.write('gone1');
    await n.write('gone2');
    await until('an empty outbox', async () => (await n.store.outbox.count()) === 0);
    // As the trim of a small history would, before this node's repair read them (the repair is not run yet: no later event).
    const db = openDatabase(n.dir);
    db.prepare("DELETE FROM channel_log WHERE channel = 'general' AND offset IN (2, 3)").run();
    db.close();
    await n.write('b');
    await until('the event after the hole', () => n.delivered.length === 2);
    expect(n.seen()).toEqual([
      [1, 'a'],
      [4, 'b'],
    ]);
    expect(n.shared.getIngest('events_gap_unrepairable_total')).toBe(2);
  });

  it('a positioned message that cannot be parsed is read from the log instead', async () => {
    const n = await node({ drop: () => true });
    await n.write('a');
    await until('an empty outbox', async () => (await n.store.outbox.count()) === 0);
    n.pipeline.handle('general', Buffer.from(`{"position":{"offset":1,"epoch":"${n.epoch}","at":1},"type":`));
    await until('the event', () => n.delivered.length === 1);
    expect(n.seen()).toEqual([[1, 'a']]);
    expect(n.shared.getIngest('events_rejected_total')).toBe(1);
  });

  it("refuses another store's epoch and counts it", async () => {
    const n = await node({ drop: () => true });
    n.pipeline.handle('general', Buffer.from('{"position":{"offset":1,"epoch":"other","at":1},"type":"notification","notification_type":"x","data":{}}'));
    expect(n.shared.getIngest('events_rejected_total')).toBe(1);
    expect(n.delivered).toEqual([]);
  });

  it('a message without a position (a backend on the bus) is logged, then delivered with its offset', async () => {
    const n = await node();
    await n.write('a');
    await until('the first', () => n.delivered.length === 1);
    n.pipeline.handle('general', Buffer.from('{"type":"notification","notification_type":"backend","data":{}}'));
    await until('the backend event', () => n.delivered.length === 2);
    expect(n.seen()).toEqual([
      [1, 'a'],
      [2, 'backend'],
    ]);
    expect(n.shared.getIngest('events_intake_total')).toBe(1);
  });
});

describe('outbox dead letters', () => {
  it(`a row the broker never acknowledges is claimed again as its lease lapses, and dead-lettered at the ${OUTBOX_MAX_ATTEMPTS + 1}th claim; subscribers still have it`, async () => {
    const n = await node({ noAck: (p) => p.includes('"stuck"') }, 30);
    for (const type of ['a', 'stuck', 'b']) await n.write(type);
    await until('a dead letter', async () => (await n.store.deadLetters.count()) === 1);
    expect(n.published.filter((p) => p.includes('"stuck"'))).toHaveLength(OUTBOX_MAX_ATTEMPTS);
    expect(await n.store.outbox.count()).toBe(0);
    expect(await n.store.deadLetters.page(0, 10)).toEqual([
      {
        id: 1,
        channel: 'general',
        offset: 2,
        reason: `claimed ${OUTBOX_MAX_ATTEMPTS} times without the broker's acknowledgement`,
        created_at: expect.any(Number),
        dead_at: expect.any(Number),
        bytes: expect.any(Number),
      },
    ]);
    expect(n.seen()).toEqual([
      [1, 'a'],
      [2, 'stuck'],
      [3, 'b'],
    ]);
    expect(n.shared.getIngest('outbox_dead_lettered_total')).toBe(1);
    expect(n.shared.getIngest('outbox_retries_total')).toBeGreaterThanOrEqual(OUTBOX_MAX_ATTEMPTS - 1); // the stuck row's publishes after its first
  });

  it('a bus that is down claims nothing: an outage never counts against a row', async () => {
    const n = await node({}, 30);
    (n.relay as unknown as { bus: { connected: boolean } }).bus.connected = false;
    await n.write('a');
    await new Promise((r) => setTimeout(r, 300)); // ten lease periods in which nothing may be claimed
    expect(n.published).toEqual([]);
    expect(await n.store.deadLetters.count()).toBe(0);
  });
});

describe("the local fast path (rows from this node's store pool, delivered before the bus brings them back)", () => {
  it('delivers each written row at once, once, in offset order; the relay still publishes it and the bus copy is dropped, not counted as a duplicate', async () => {
    const n = await node({ twice: true });
    for (const type of ['a', 'b', 'c']) {
      n.pipeline.written([await n.writeLocal(type)]);
      n.relay.nudge();
    }
    n.pipeline.flush();
    // Delivered in this turn, before any bus message could come back.
    expect(n.seen()).toEqual([
      [1, 'a'],
      [2, 'b'],
      [3, 'c'],
    ]);
    await until('an empty outbox', async () => (await n.store.outbox.count()) === 0);
    await until('both copies of each back from the bus', () => n.shared.getIngest('events_received_total') === 6);
    expect(n.published).toHaveLength(3);
    expect(n.delivered).toHaveLength(3);
    expect(n.shared.getIngest('events_local_total')).toBe(3);
    expect(n.shared.getIngest('events_duplicates_total')).toBe(3); // the second copies only
  });

  it('rows handed out of order (two edges) are held and the gap read from the log: subscribers see the log order', async () => {
    const n = await node({ drop: () => true });
    const a = await n.writeLocal('a');
    const b = await n.writeLocal('b');
    n.pipeline.written([b]);
    await until('both events', () => n.delivered.length === 2);
    n.pipeline.written([a]); // late: a copy by now
    n.pipeline.flush();
    expect(n.seen()).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
    expect(n.shared.getIngest('events_gap_repaired_total')).toBe(1);
  });

  it('the bus down: written rows still reach this node, and stay in the outbox until the broker has them', async () => {
    const n = await node({ noAck: () => true });
    n.pipeline.written([await n.writeLocal('a')]);
    n.pipeline.flush();
    expect(n.seen()).toEqual([[1, 'a']]);
    n.relay.nudge();
    await until('published', () => n.published.length === 1);
    expect(await n.store.outbox.count()).toBe(1);
  });

  it('the store hands on only what its transaction committed: a refused write gives nothing, an update that changes nothing no event', async () => {
    const n = await node();
    const spec = loadConfig({}).events.channels.collections[0];
    const created = await n.store.entities.create(spec, { tipo: 'x' });
    const [row] = await n.store.log.range(spec.channel, 1, 1, 1);
    expect(created.event.logged).toEqual(row);
    await expect(n.store.outbox.publish('general', '{"deep":' + '['.repeat(100) + ']'.repeat(100) + '}')).rejects.toThrow();
    const id = Number(created.entity[spec.idField]);
    const same = await n.store.entities.update(spec, id, {});
    expect(same?.event).toBeNull();
    const changed = await n.store.entities.update(spec, id, { tipo: 'y' });
    expect(changed?.event?.logged?.offset).toBe(2);
  });
});
