/**
 * The outbox's dead letters (gateway.sqlite `dead_letters`): outbox rows the relay gave up
 * publishing, kept with their event, the reason and the time instead of being published forever. A
 * row goes there after OUTBOX_MAX_ATTEMPTS claims without the broker's acknowledgement (a broker
 * that refuses it, for its size or otherwise), or when its event cannot be published at all. The
 * event stays in the channel log: every node still delivers it to its subscribers from there (gap
 * repair and the head poll, channels/ingest/channel-pipeline.ts); only the bus never carried it. An
 * operator reads them (GET /api/v1/outbox/dead-letters lists them without their payload, which stays
 * in the table).
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../../store/database.js';
import type { Position } from '../../../store/store.js';

/** Claims of a row (each a publish whose lease lapsed without the broker's acknowledgement) before it is dead-lettered. */
export const OUTBOX_MAX_ATTEMPTS = 5;

export interface DeadLetter {
  readonly id: number;
  readonly channel: string;
  /** The event's offset in its channel's log. */
  readonly offset: number;
  readonly reason: string;
  /** When the row was written to the outbox, and when it was given up (ms since the epoch). */
  readonly created_at: number;
  readonly dead_at: number;
  readonly bytes: number;
}

export class DeadLetters {
  private readonly moveRow: (channel: string, offset: number, reason: string, at: number) => boolean;
  private readonly countRows: Statement<[], { n: number }>;
  private readonly pageRows: Statement<[number, number], DeadLetter>;

  constructor(db: Db) {
    const copy = db.prepare(`INSERT INTO dead_letters (channel, offset, payload, created_at, reason, dead_at)
      SELECT o.channel, o.offset, coalesce(l.event, ''), o.created_at, @reason, @at FROM outbox o
      LEFT JOIN channel_log l ON l.channel = o.channel AND l.offset = o.offset WHERE o.channel = @channel AND o.offset = @offset`);
    const remove = db.prepare('DELETE FROM outbox WHERE channel = ? AND offset = ?');
    this.moveRow = db.transaction((channel: string, offset: number, reason: string, at: number) => {
      const moved = copy.run({ channel, offset, reason, at }).changes > 0;
      remove.run(channel, offset);
      return moved;
    });
    this.countRows = db.prepare('SELECT COUNT(*) AS n FROM dead_letters');
    this.pageRows = db.prepare(
      'SELECT id, channel, offset, reason, created_at, dead_at, length(CAST(payload AS BLOB)) AS bytes FROM dead_letters ORDER BY id LIMIT ? OFFSET ?',
    );
  }

  /** Moves an outbox row here in one transaction; false when there was no such row (already gone). */
  move(key: Position, reason: string, at = Date.now()): boolean {
    return this.moveRow(key.channel, key.offset, reason.slice(0, 500), at);
  }

  count(): number {
    return this.countRows.get()!.n;
  }

  /** Oldest first. */
  page(skip: number, limit: number): DeadLetter[] {
    return this.pageRows.all(limit, skip);
  }
}
