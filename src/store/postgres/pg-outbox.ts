/**
 * The outbox and its dead letters on PostgreSQL: a lease (design §3). A write's outbox row is
 * leased to its writer (`claimed_by`, `claimed_until` on the database's clock, pg-log.ts
 * appendCtes); the writer's relay claims it at once, any node's relay claims a row whose lease
 * lapsed (its writer died, or the broker never acknowledged it). Claims take rows with
 * FOR UPDATE SKIP LOCKED, so relays on several nodes never wait on each other; the row stays in the
 * table, leased, until a broker acknowledgement deletes it (`published`), whoever publishes it. A
 * lapsed lease means a copy on the bus, which receivers drop by offset.
 */
import { checkOutboxEvent } from '../../features/channels/outbox-event.js';
import type { DeadLetter, DeadLetterRepository, Outbox, OutboxEvent, OutboxRow, Position } from '../store.js';
import { appendCtes } from './pg-log.js';
import type { PgSession } from './pg-session.js';

interface ClaimedRow {
  channel: string;
  event_offset: string;
  attempts: number;
  taken: boolean;
  at: string;
  event: string;
}

export class PgOutbox implements Outbox {
  constructor(
    private readonly db: PgSession,
    private readonly node: string,
    private readonly maxJsonDepth: number,
    private readonly leaseMs: number,
  ) {}

  async publish(channel: string, eventJson: string, digest?: string): Promise<OutboxEvent> {
    checkOutboxEvent(eventJson, this.maxJsonDepth, 'GW_ERR_EVENT_INVALID', 'The event');
    const params = { channel: '$1::text', event: '$2::text', node: '$3::text', at: '$4::bigint' };
    if (digest === undefined) {
      await this.db.write(`WITH ${appendCtes(null, params, this.leaseMs)} SELECT 1`, [channel, eventJson, this.node, Date.now()], 'outbox-publish');
    } else {
      // Every node receives a backend's message: the first to write its digest appends it.
      await this.db.query(
        `WITH i AS (INSERT INTO intake (digest, at) VALUES ($5::text, $4::bigint) ON CONFLICT (digest) DO NOTHING RETURNING digest),
         ${appendCtes('i', params, this.leaseMs)} SELECT 1`,
        [channel, eventJson, this.node, Date.now(), digest],
        'outbox-intake',
      );
    }
    return { channel };
  }

  async claim(node: string, leaseMs: number, limit: number): Promise<OutboxRow[]> {
    const { rows } = await this.db.query<ClaimedRow>(
      `WITH s AS (
         SELECT channel, event_offset, claimed_by FROM outbox
         WHERE (claimed_by = $1 AND attempts = 0) OR claimed_until < now()
         ORDER BY channel, event_offset LIMIT $3 FOR UPDATE SKIP LOCKED),
       c AS (
         UPDATE outbox o SET claimed_by = $1, claimed_until = now() + $2 * interval '1 millisecond', attempts = o.attempts + 1
         FROM s WHERE o.channel = s.channel AND o.event_offset = s.event_offset
         RETURNING o.channel, o.event_offset, o.attempts, s.claimed_by AS was)
       SELECT c.channel, c.event_offset, c.attempts, c.was <> $1 AS taken, l.at, l.event FROM c
       JOIN channel_log l ON l.channel = c.channel AND l.event_offset = c.event_offset
       ORDER BY c.channel, c.event_offset`,
      [node, leaseMs, limit],
      'outbox-claim',
    );
    return rows.map((r) => ({
      channel: r.channel,
      offset: Number(r.event_offset),
      at: Number(r.at),
      event: r.event,
      attempts: r.attempts,
      ...(r.taken ? { takenOver: true } : {}),
    }));
  }

  async published(keys: readonly Position[]): Promise<void> {
    if (keys.length === 0) return;
    await this.db.query(
      'DELETE FROM outbox WHERE (channel, event_offset) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))',
      [keys.map((k) => k.channel), keys.map((k) => k.offset)],
      'outbox-published',
    );
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox');
    return rows[0].n;
  }
}

interface DeadLetterRow {
  id: string;
  channel: string;
  event_offset: string;
  reason: string;
  created_at: string;
  dead_at: string;
  bytes: number;
}

export class PgDeadLetters implements DeadLetterRepository {
  constructor(private readonly db: PgSession) {}

  async move(key: Position, reason: string): Promise<boolean> {
    // One statement: the row leaves the outbox exactly when it lands here, with its event from the log.
    const { rowCount } = await this.db.query(
      `WITH o AS (DELETE FROM outbox WHERE channel = $1 AND event_offset = $2 RETURNING channel, event_offset, writer, created_at)
       INSERT INTO dead_letters (channel, event_offset, writer, payload, created_at, reason, dead_at)
       SELECT o.channel, o.event_offset, o.writer, coalesce(l.event, ''), o.created_at, $3::text, $4::bigint FROM o
       LEFT JOIN channel_log l ON l.channel = o.channel AND l.event_offset = o.event_offset`,
      [key.channel, key.offset, reason.slice(0, 500), Date.now()],
    );
    return (rowCount ?? 0) > 0;
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM dead_letters');
    return rows[0].n;
  }

  async page(skip: number, limit: number): Promise<DeadLetter[]> {
    const { rows } = await this.db.query<DeadLetterRow>(
      'SELECT id, channel, event_offset, reason, created_at, dead_at, octet_length(payload) AS bytes FROM dead_letters ORDER BY id LIMIT $1 OFFSET $2',
      [limit, skip],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      channel: r.channel,
      offset: Number(r.event_offset),
      reason: r.reason,
      created_at: Number(r.created_at),
      dead_at: Number(r.dead_at),
      bytes: r.bytes,
    }));
  }
}
