/**
 * Share-link revocations on PostgreSQL (store.ts RevocationRepository; design §4.1), shared by every
 * node: one that starts after a revocation loads it, one whose bus was cut finds it in its catch-up.
 *
 * `revoked_at` and "unexpired" are the database's clock (clock_timestamp(), ms), not the node's: the
 * catch-up's cursor is a `revokedAt` it read, so the nodes' clocks never need to agree. The first
 * copy of a revocation wins (ON CONFLICT DO NOTHING): the other nodes' copies change nothing.
 */
import type { RevocationRepository, StoredRevocation } from '../store.js';
import type { PgSession } from './pg-session.js';

const NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

export class PgRevocations implements RevocationRepository {
  constructor(private readonly db: PgSession) {}

  async revoke(jti: string, expiresAt: number): Promise<void> {
    await this.db.query(`INSERT INTO revocations (jti, expires_at, revoked_at) VALUES ($1, $2, ${NOW_MS}) ON CONFLICT (jti) DO NOTHING`, [jti, expiresAt]);
  }

  async active(sinceMs: number): Promise<StoredRevocation[]> {
    const { rows } = await this.db.query<{ jti: string; expires_at: string; revoked_at: string }>(
      `SELECT jti, expires_at, revoked_at FROM revocations WHERE expires_at > ${NOW_MS} AND revoked_at >= $1 ORDER BY revoked_at, jti COLLATE "C"`,
      [sinceMs],
    );
    return rows.map((r) => ({ jti: r.jti, expiresAt: Number(r.expires_at), revokedAt: Number(r.revoked_at) }));
  }

  async purgeExpired(now: number): Promise<number> {
    const result = await this.db.query('DELETE FROM revocations WHERE expires_at <= $1', [now]);
    return result.rowCount ?? 0;
  }
}
