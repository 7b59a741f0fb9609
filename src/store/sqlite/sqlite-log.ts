/**
 * The channel log and the outbox in gateway.sqlite (src/store/database.ts), the one-node store.
 *
 *   SqliteLogAppender  inside a write's transaction: the channel's next offset (its head row), the
 *                      log row and the outbox row. SQLite has one writer, so offsets follow commit
 *                      order and a reader never sees offset n+1 without n.
 *   SqliteLog          the ChannelLog reads ingest makes (its start, gap repairs, the head poll) and the trim.
 *   SqliteOutbox       the relay's side. One node, one relay: the lease lives in this object's memory
 *                      (rows claimed and when), not in the table, so claiming costs a read and no
 *                      write on the file the store pool writes; only the broker's acknowledgements
 *                      delete rows, in one statement per batch. A restart forgets the leases, so every
 *                      unacknowledged row is published again: copies that receivers drop by offset.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../database.js';
import { storeEpoch } from '../database.js';
import type { ChannelLog, LogRow, Outbox, OutboxEvent, OutboxRow, Position } from '../store.js';

export class SqliteLogAppender {
  private readonly nextOffset: Statement<[string], { last_offset: number }>;
  private readonly insertLog: Statement<[string, number, number, string]>;
  private readonly enqueue: Statement<[string, number, number]>;

  constructor(db: Db) {
    this.nextOffset = db.prepare(`INSERT INTO channel_heads (channel, last_offset) VALUES (?, 1)
      ON CONFLICT (channel) DO UPDATE SET last_offset = last_offset + 1 RETURNING last_offset`);
    this.insertLog = db.prepare('INSERT INTO channel_log (channel, offset, at, event) VALUES (?, ?, ?, ?)');
    this.enqueue = db.prepare('INSERT INTO outbox (channel, offset, created_at) VALUES (?, ?, ?)');
  }

  /** The row the last append wrote (capture). */
  private last: LogRow | null = null;
  private appended = 0;

  /** Must run inside the write's transaction. */
  append(channel: string, eventJson: string, at = Date.now()): Position {
    const offset = this.nextOffset.get(channel)!.last_offset;
    this.insertLog.run(channel, offset, at, eventJson);
    this.enqueue.run(channel, offset, at);
    this.appended++;
    this.last = { channel, offset, at, event: eventJson };
    return { channel, offset };
  }

  /**
   * Runs a write (its transaction inside) and returns what it logged: the row it committed, or
   * null (none, or more than one). For the local fast path (store.ts OutboxEvent.logged): a write
   * that throws returns nothing, so a rolled-back row is never handed on.
   */
  capture<T>(write: () => T): [T, LogRow | null] {
    this.last = null;
    this.appended = 0;
    const value = write();
    const row = this.appended === 1 ? this.last : null;
    this.last = null;
    return [value, row];
  }
}

export class SqliteLog implements ChannelLog {
  private readonly headRows: Statement<[], { channel: string; last_offset: number }>;
  private readonly rangeRows: Statement<[string, number, number, number], LogRow>;
  private readonly recentRows: Statement<[string, number, number], LogRow>;
  private readonly trimRows: Statement<[{ channel: string; upTo: number; notBefore: number }]>;

  constructor(private readonly db: Db) {
    this.headRows = db.prepare('SELECT channel, last_offset FROM channel_heads');
    this.rangeRows = db.prepare('SELECT channel, offset, at, event FROM channel_log WHERE channel = ? AND offset BETWEEN ? AND ? ORDER BY offset LIMIT ?');
    this.recentRows = db.prepare('SELECT channel, offset, at, event FROM channel_log WHERE channel = ? AND offset > ? AND at >= ? ORDER BY offset');
    this.trimRows = db.prepare(`DELETE FROM channel_log WHERE channel = @channel AND (offset <= @upTo OR at < @notBefore)
      AND offset < coalesce((SELECT min(offset) FROM outbox WHERE channel = @channel), 9007199254740991)`);
  }

  async epoch() {
    return storeEpoch(this.db);
  }

  async heads() {
    return new Map(this.headRows.all().map((r) => [r.channel, r.last_offset]));
  }

  async range(channel: string, from: number, to: number, limit: number) {
    return this.rangeRows.all(channel, from, to, limit);
  }

  async recent(channel: string, afterOffset: number, notBefore: number) {
    return this.recentRows.all(channel, afterOffset, notBefore);
  }

  async trim(channel: string, upToOffset: number, notBefore: number) {
    return this.trimRows.run({ channel, upTo: upToOffset, notBefore }).changes;
  }
}

interface Lease {
  until: number;
  attempts: number;
}

export class SqliteOutbox implements Outbox {
  private readonly unclaimed: Statement<[number, number], OutboxRow & { id: number }>;
  private readonly byKey: Statement<[string, number], OutboxRow & { id: number }>;
  private readonly countRows: Statement<[], { n: number }>;
  private readonly remove: (keys: readonly Position[]) => void;
  /** The highest outbox id claimed so far; rows above it are new. */
  private claimedUpTo = 0;
  /** Claimed rows not yet acknowledged, by `channel offset`. */
  private readonly leases = new Map<string, Lease & Position>();

  constructor(
    db: Db,
    private readonly publishEvent: (channel: string, eventJson: string) => OutboxEvent,
  ) {
    const select =
      'SELECT o.id, o.channel, o.offset, l.at, l.event, 1 AS attempts FROM outbox o JOIN channel_log l ON l.channel = o.channel AND l.offset = o.offset';
    this.unclaimed = db.prepare(`${select} WHERE o.id > ? ORDER BY o.id LIMIT ?`);
    this.byKey = db.prepare(`${select} WHERE o.channel = ? AND o.offset = ?`);
    this.countRows = db.prepare('SELECT COUNT(*) AS n FROM outbox');
    const removeOne = db.prepare('DELETE FROM outbox WHERE channel = ? AND offset = ?');
    this.remove = db.transaction((keys: readonly Position[]) => {
      for (const key of keys) removeOne.run(key.channel, key.offset);
    });
  }

  async publish(channel: string, eventJson: string): Promise<OutboxEvent> {
    return this.publishEvent(channel, eventJson);
  }

  async claim(_node: string, leaseMs: number, limit: number): Promise<OutboxRow[]> {
    const now = Date.now();
    const claimed: OutboxRow[] = [];
    for (const [key, lease] of this.leases) {
      if (claimed.length >= limit) break;
      if (lease.until > now) continue;
      const row = this.byKey.get(lease.channel, lease.offset);
      if (row === undefined) {
        this.leases.delete(key); // gone (dead-lettered, or acknowledged by a relay before a restart)
        continue;
      }
      lease.until = now + leaseMs;
      lease.attempts += 1;
      claimed.push({ channel: row.channel, offset: row.offset, at: row.at, event: row.event, attempts: lease.attempts });
    }
    if (claimed.length < limit) {
      for (const row of this.unclaimed.all(this.claimedUpTo, limit - claimed.length)) {
        this.claimedUpTo = row.id;
        this.leases.set(`${row.channel} ${row.offset}`, { channel: row.channel, offset: row.offset, until: now + leaseMs, attempts: 1 });
        claimed.push({ channel: row.channel, offset: row.offset, at: row.at, event: row.event, attempts: 1 });
      }
    }
    return claimed;
  }

  async published(keys: readonly Position[]) {
    if (keys.length === 0) return;
    this.remove(keys);
    for (const key of keys) this.leases.delete(`${key.channel} ${key.offset}`);
  }

  async count() {
    return this.countRows.get()!.n;
  }
}
