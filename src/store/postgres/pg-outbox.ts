/**
 * The outbox and its dead letters on PostgreSQL, as step 1's interface has them (rows by id; each
 * row names the node that wrote it). Step 5 replaces `pending` with the lease (claim/published).
 *
 * Known limit until then: an identity id is taken at INSERT, not at COMMIT, so with writers on
 * several connections a row can commit after a row with a higher id; a reader that remembers the
 * last id it saw (today's relay) could pass it by. Only one node's SQLite relay reads an outbox
 * today; nothing reads this one yet.
 */
import { checkOutboxEvent } from '../../features/channels/outbox-event.js';
import type { DeadLetter, DeadLetterRepository, Outbox, OutboxEvent, OutboxRow } from '../store.js';
import { OUTBOX_INSERT } from './pg-entities.js';
import type { PgSession } from './pg-session.js';

export class PgOutbox implements Outbox {
  constructor(
    private readonly db: PgSession,
    private readonly node: string,
    private readonly maxJsonDepth: number,
  ) {}

  async publish(channel: string, eventJson: string): Promise<OutboxEvent> {
    checkOutboxEvent(eventJson, this.maxJsonDepth, 'GW_ERR_EVENT_INVALID', 'The event');
    await this.db.query(`${OUTBOX_INSERT} VALUES ($1, $2, $3, $4)`, [this.node, channel, eventJson, Date.now()]);
    return { channel };
  }

  async pending(afterId: number, limit: number): Promise<OutboxRow[]> {
    const { rows } = await this.db.query<{ id: string; channel: string; payload: string }>(
      'SELECT id, channel, payload FROM outbox WHERE id > $1 ORDER BY id LIMIT $2',
      [afterId, limit],
    );
    return rows.map((r) => ({ id: Number(r.id), channel: r.channel, payload: r.payload }));
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox');
    return rows[0].n;
  }
}

interface DeadLetterRow {
  id: string;
  channel: string;
  reason: string;
  created_at: string;
  dead_at: string;
  bytes: number;
}

export class PgDeadLetters implements DeadLetterRepository {
  constructor(private readonly db: PgSession) {}

  async move(id: number, reason: string): Promise<boolean> {
    // One statement: the row leaves the outbox exactly when it lands here (INSERT OR REPLACE on SQLite).
    const { rowCount } = await this.db.query(
      `WITH o AS (DELETE FROM outbox WHERE id = $1 RETURNING id, node, channel, payload, created_at)
       INSERT INTO dead_letters (id, node, channel, payload, created_at, reason, dead_at)
       SELECT id, node, channel, payload, created_at, $2::text, $3::bigint FROM o
       ON CONFLICT (id) DO UPDATE SET node = excluded.node, channel = excluded.channel, payload = excluded.payload,
         created_at = excluded.created_at, reason = excluded.reason, dead_at = excluded.dead_at`,
      [id, reason.slice(0, 500), Date.now()],
    );
    return (rowCount ?? 0) > 0;
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM dead_letters');
    return rows[0].n;
  }

  async page(skip: number, limit: number): Promise<DeadLetter[]> {
    const { rows } = await this.db.query<DeadLetterRow>(
      'SELECT id, channel, reason, created_at, dead_at, octet_length(payload) AS bytes FROM dead_letters ORDER BY id LIMIT $1 OFFSET $2',
      [limit, skip],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      channel: r.channel,
      reason: r.reason,
      created_at: Number(r.created_at),
      dead_at: Number(r.dead_at),
      bytes: r.bytes,
    }));
  }
}
