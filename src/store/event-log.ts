/**
 * The ingest thread's side of the database: channel heads (last offset given), the bounded
 * history, the duplicate filter's positions per origin node, and the outbox rows still to relay.
 * A batch of accepted events is committed in one transaction (history rows, heads, origins, and
 * the outbox rows that came back from the bus), before the events go to the edges.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from './database.js';

export interface HistoryRow {
  readonly channel: string;
  readonly offset: number;
  readonly at: number;
  /** The ChannelEvent as JSON. */
  readonly event: string;
}

export interface OutboxRow {
  readonly id: number;
  readonly channel: string;
  readonly payload: string;
}

export interface CommitBatch {
  readonly rows: readonly HistoryRow[];
  readonly heads: ReadonlyMap<string, number>;
  readonly origins: ReadonlyMap<string, number>;
  /** Outbox rows up to this id came back from the bus: delete them (0: none). */
  readonly relayedUpTo: number;
}

export class EventLog {
  private readonly insertRow: Statement<[string, number, number, string]>;
  private readonly setHead: Statement<[string, number]>;
  private readonly setOrigin: Statement<[string, number]>;
  private readonly dropRelayed: Statement<[number]>;
  private readonly pendingRows: Statement<[number, number], OutboxRow>;
  private readonly countPending: Statement<[], { n: number }>;
  private readonly recentRows: Statement<[string, number, number], HistoryRow>;
  private readonly trimRows: Statement<[string, number, number]>;
  private readonly commitTx: (batch: CommitBatch) => void;

  constructor(private readonly db: Db) {
    this.insertRow = db.prepare('INSERT OR REPLACE INTO history (channel, offset, at, event) VALUES (?, ?, ?, ?)');
    this.setHead = db.prepare('INSERT INTO channel_heads (channel, last_offset) VALUES (?, ?) ON CONFLICT (channel) DO UPDATE SET last_offset = excluded.last_offset');
    this.setOrigin = db.prepare('INSERT INTO origins (node, last_seq) VALUES (?, ?) ON CONFLICT (node) DO UPDATE SET last_seq = excluded.last_seq');
    this.dropRelayed = db.prepare('DELETE FROM outbox WHERE id <= ?');
    this.pendingRows = db.prepare('SELECT id, channel, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?');
    this.countPending = db.prepare('SELECT COUNT(*) AS n FROM outbox');
    this.recentRows = db.prepare('SELECT channel, offset, at, event FROM history WHERE channel = ? AND offset > ? AND at >= ? ORDER BY offset');
    this.trimRows = db.prepare('DELETE FROM history WHERE channel = ? AND (offset <= ? OR at < ?)');
    this.commitTx = db.transaction((batch: CommitBatch) => {
      for (const row of batch.rows) this.insertRow.run(row.channel, row.offset, row.at, row.event);
      for (const [channel, offset] of batch.heads) this.setHead.run(channel, offset);
      for (const [node, seq] of batch.origins) this.setOrigin.run(node, seq);
      if (batch.relayedUpTo > 0) this.dropRelayed.run(batch.relayedUpTo);
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

  pendingCount(): number {
    return this.countPending.get()!.n;
  }
}
