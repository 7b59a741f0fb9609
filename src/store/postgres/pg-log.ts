/**
 * The channel log on PostgreSQL (`channel_heads`, `channel_log`, `gateway_meta` of migration 1), and
 * the part of a write's statement that appends its event (appendCtes).
 *
 * A write appends in the same statement as its change: the channel's head row is taken with
 * INSERT … ON CONFLICT DO UPDATE … RETURNING, which locks it until the commit, so a second writer
 * on the channel waits for the first one's commit and offsets follow commit order; a reader that
 * sees offset n+1 sees n. A rolled-back write rolls its head back too: no offset is ever skipped.
 * The head is taken last in the statement, so the lock is held for the rest of the statement and
 * the commit, never across a round trip.
 */
import type { ChannelLog, LogRow } from '../store.js';
import type { PgSession } from './pg-session.js';

/** How long the writer's own relay has its rows to itself before any node may claim them (design §3). */
export const DEFAULT_LEASE_MS = 5_000;

/** SQL placeholders (or literals) of what an append needs. */
export interface AppendParams {
  /** The channel (text). */
  readonly channel: string;
  /** The event's JSON (text). */
  readonly event: string;
  /** The writing node (text). */
  readonly node: string;
  /** When, in ms since the epoch (bigint). */
  readonly at: string;
}

/**
 * CTEs `h` (the new head), `l` (the log row) and `o` (the outbox row), to follow a write's own CTEs
 * in one WITH. `from`: a CTE that has one row exactly when the write happened (a compare-and-set that
 * lost appends nothing; `event` may use its columns), or null to append unconditionally.
 * `leaseMs`: the writer's lease.
 */
export function appendCtes(from: string | null, p: AppendParams, leaseMs: number): string {
  const source = from === null ? '' : ` FROM ${from}`;
  return `h AS (INSERT INTO channel_heads (channel, last_offset) SELECT ${p.channel}, 1${source}
              ON CONFLICT (channel) DO UPDATE SET last_offset = channel_heads.last_offset + 1 RETURNING last_offset),
       l AS (INSERT INTO channel_log (channel, event_offset, at, event) SELECT ${p.channel}, last_offset, ${p.at}, ${p.event} FROM h${from === null ? '' : `, ${from}`} RETURNING event_offset),
       o AS (INSERT INTO outbox (channel, event_offset, writer, claimed_by, claimed_until, created_at)
             SELECT ${p.channel}, event_offset, ${p.node}, ${p.node}, now() + interval '${Math.trunc(leaseMs)} milliseconds', ${p.at} FROM l)`;
}

interface Row {
  channel: string;
  event_offset: string;
  at: string;
  event: string;
}

const rowOf = (r: Row): LogRow => ({ channel: r.channel, offset: Number(r.event_offset), at: Number(r.at), event: r.event });

export class PgLog implements ChannelLog {
  private cachedEpoch: string | undefined;
  private intakePurgedAt = 0;

  constructor(private readonly db: PgSession) {}

  async epoch(): Promise<string> {
    if (this.cachedEpoch !== undefined) return this.cachedEpoch;
    const { rows } = await this.db.query<{ value: string }>("SELECT value FROM gateway_meta WHERE key = 'epoch'");
    if (rows.length === 0) throw new Error("the database has no epoch (gateway_meta): was it created by the gateway's migrations?");
    return (this.cachedEpoch = rows[0].value);
  }

  async heads(): Promise<Map<string, number>> {
    const { rows } = await this.db.query<{ channel: string; last_offset: string }>('SELECT channel, last_offset FROM channel_heads');
    return new Map(rows.map((r) => [r.channel, Number(r.last_offset)]));
  }

  async range(channel: string, from: number, to: number, limit: number): Promise<LogRow[]> {
    const { rows } = await this.db.query<Row>(
      'SELECT channel, event_offset, at, event FROM channel_log WHERE channel = $1 AND event_offset BETWEEN $2 AND $3 ORDER BY event_offset LIMIT $4',
      [channel, from, to, limit],
      'log-range',
    );
    return rows.map(rowOf);
  }

  async recent(channel: string, afterOffset: number, notBefore: number): Promise<LogRow[]> {
    const { rows } = await this.db.query<Row>(
      'SELECT channel, event_offset, at, event FROM channel_log WHERE channel = $1 AND event_offset > $2 AND at >= $3 ORDER BY event_offset',
      [channel, afterOffset, notBefore],
    );
    return rows.map(rowOf);
  }

  async trim(channel: string, upToOffset: number, notBefore: number): Promise<number> {
    const { rowCount } = await this.db.query(
      `DELETE FROM channel_log WHERE channel = $1 AND (event_offset <= $2 OR at < $3)
         AND event_offset < coalesce((SELECT min(event_offset) FROM outbox WHERE channel = $1), 9007199254740991)`,
      [channel, upToOffset, notBefore],
    );
    const now = Date.now();
    if (now - this.intakePurgedAt >= INTAKE_KEEP_MS / 6) {
      this.intakePurgedAt = now;
      await this.db.query('DELETE FROM intake WHERE at < $1', [now - INTAKE_KEEP_MS]);
    }
    return rowCount ?? 0;
  }
}

/** How long a backend's message digest is remembered (pg-outbox.ts publish). */
const INTAKE_KEEP_MS = 60_000;
