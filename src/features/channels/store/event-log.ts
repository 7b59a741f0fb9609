/**
 * The ingest thread's side of the database (store/database.ts): in history.sqlite, channel heads
 * (last offset given), the bounded history and the duplicate filter's position per origin node; in
 * gateway.sqlite, the outbox rows still to relay and the dead letters. A batch of accepted events is committed in one
 * transaction of the history file before the events go to the edges; the outbox rows that came back
 * are deleted later, in the background (the origin position already says they are done).
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../../store/database.js';
import { DeadLetters } from './dead-letters.js';

export interface HistoryRow {
  readonly channel: string;
  readonly offset: number;
  readonly at: number;
  /** The ChannelEvent as JSON. */
  readonly event: string;
}

interface OutboxRow {
  readonly id: number;
  readonly channel: string;
  readonly payload: string;
}

interface CommitBatch {
  readonly rows: readonly HistoryRow[];
  readonly heads: ReadonlyMap<string, number>;
  readonly origins: ReadonlyMap<string, number>;
}

export class EventLog {
  private readonly insertRow: Statement<[string, number, number, string]>;
  private readonly setHead: Statement<[string, number]>;
  private readonly setOrigin: Statement<[string, number]>;
  private readonly dropRelayedRows: Statement<[number]>;
  private readonly pendingRows: Statement<[number, number], OutboxRow>;
  private readonly countPending: Statement<[number], { n: number }>;
  private readonly recentRows: Statement<[string, number, number], HistoryRow>;
  private readonly trimRows: Statement<[string, number, number]>;
  private readonly commitTx: (batch: CommitBatch) => void;
  /** In gateway.sqlite with the outbox: rows move there in one transaction. */
  readonly deadLetters: DeadLetters;

  constructor(
    private readonly db: Db,
    store: Db,
  ) {
    this.deadLetters = new DeadLetters(store);
    this.insertRow = db.prepare('INSERT OR REPLACE INTO history (channel, offset, at, event) VALUES (?, ?, ?, ?)');
    this.setHead = db.prepare(
      'INSERT INTO channel_heads (channel, last_offset) VALUES (?, ?) ON CONFLICT (channel) DO UPDATE SET last_offset = excluded.last_offset',
    );
    this.setOrigin = db.prepare('INSERT INTO origins (node, last_seq) VALUES (?, ?) ON CONFLICT (node) DO UPDATE SET last_seq = excluded.last_seq');
    this.dropRelayedRows = store.prepare('DELETE FROM outbox WHERE id <= ?');
    this.pendingRows = store.prepare('SELECT id, channel, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?');
    this.countPending = store.prepare('SELECT COUNT(*) AS n FROM outbox WHERE id > ?');
    this.recentRows = db.prepare('SELECT channel, offset, at, event FROM history WHERE channel = ? AND offset > ? AND at >= ? ORDER BY offset');
    this.trimRows = db.prepare('DELETE FROM history WHERE channel = ? AND (offset <= ? OR at < ?)');
    this.commitTx = db.transaction((batch: CommitBatch) => {
      for (const row of batch.rows) this.insertRow.run(row.channel, row.offset, row.at, row.event);
      for (const [channel, offset] of batch.heads) this.setHead.run(channel, offset);
      for (const [node, seq] of batch.origins) this.setOrigin.run(node, seq);
    });
  }

  heads(): Map<string, number> {
    const rows = this.db.prepare('SELECT channel, last_offset FROM channel_heads').all() as { channel: string; last_offset: number }[];
    return new Map(rows.map((r) => [r.channel, r.last_offset]));
  }

  origins(): Map<string, number> {
    const rows = this.db.prepare('SELECT node, last_seq FROM origins').all() as { node: string; last_seq: number }[];
    return new Map(rows.map((r) => [r.node, r.last_seq]));
  }

  /** History of one channel after `afterOffset`, no older than `notBefore` (ms), in order. */
  recent(channel: string, afterOffset: number, notBefore: number): HistoryRow[] {
    return this.recentRows.all(channel, afterOffset, notBefore);
  }

  commit(batch: CommitBatch): void {
    this.commitTx(batch);
  }

  /** Drops history at or below `upToOffset` or older than `notBefore` (ms). */
  trim(channel: string, upToOffset: number, notBefore: number): void {
    this.trimRows.run(channel, upToOffset, notBefore);
  }

  /** Outbox rows after `afterId`, oldest first. */
  pending(afterId: number, limit: number): OutboxRow[] {
    return this.pendingRows.all(afterId, limit);
  }

  /** Outbox rows after `afterId` (not yet seen back). */
  pendingCount(afterId: number): number {
    return this.countPending.get(afterId)!.n;
  }

  /** Deletes outbox rows at or below `upToId` (seen back from the bus; garbage now). */
  dropRelayed(upToId: number): void {
    this.dropRelayedRows.run(upToId);
  }
}
