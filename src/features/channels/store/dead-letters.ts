/**
 * The outbox's dead letters (gateway.sqlite `dead_letters`): rows the relay gave up on, kept with
 * the reason and the time instead of being published forever. A row goes there when it came back
 * from the bus and was refused (not JSON, nested too deep, not UTF-8, wrong shape, a channel that
 * no longer exists), or after it was overtaken OUTBOX_MAX_ATTEMPTS times in a row: published, and
 * later rows came back while it did not (a broker that drops it, for its size or otherwise). Nothing retries them; an operator
 * reads them (GET /api/v1/outbox/dead-letters lists them without their payload, which stays in the
 * table) and deletes or republishes them by hand.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../../store/database.js';

/** Consecutive passes of the relay in which later rows came back and this one did not, before it is dead-lettered. */
export const OUTBOX_MAX_ATTEMPTS = 5;

export interface DeadLetter {
  readonly id: number;
  readonly channel: string;
  readonly reason: string;
  /** When the row was written to the outbox, and when it was given up (ms since the epoch). */
  readonly created_at: number;
  readonly dead_at: number;
  readonly bytes: number;
}

export class DeadLetters {
  private readonly moveRow: (id: number, reason: string, at: number) => boolean;
  private readonly countRows: Statement<[], { n: number }>;
  private readonly pageRows: Statement<[number, number], DeadLetter>;

  constructor(db: Db) {
    const copy = db.prepare(`INSERT OR REPLACE INTO dead_letters (id, channel, payload, created_at, reason, dead_at)
      SELECT id, channel, payload, created_at, ?, ? FROM outbox WHERE id = ?`);
    const remove = db.prepare('DELETE FROM outbox WHERE id = ?');
    this.moveRow = db.transaction((id: number, reason: string, at: number) => {
      const moved = copy.run(reason, at, id).changes > 0;
      remove.run(id);
      return moved;
    });
    this.countRows = db.prepare('SELECT COUNT(*) AS n FROM dead_letters');
    this.pageRows = db.prepare(
      'SELECT id, channel, reason, created_at, dead_at, length(CAST(payload AS BLOB)) AS bytes FROM dead_letters ORDER BY id LIMIT ? OFFSET ?',
    );
  }

  /** Moves outbox row `id` here in one transaction; false when there was no such row (already gone). */
  move(id: number, reason: string, at = Date.now()): boolean {
    return this.moveRow(id, reason.slice(0, 500), at);
  }

  count(): number {
    return this.countRows.get()!.n;
  }

  /** Oldest first. */
  page(skip: number, limit: number): DeadLetter[] {
    return this.pageRows.all(limit, skip);
  }
}
