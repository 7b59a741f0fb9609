/**
 * Share-link revocations kept in gateway.sqlite (store/database.ts), so a restarted node refuses
 * the links revoked before it stopped: the SQLite driver's RevocationRepository (src/store/store.ts,
 * docs/design/cluster-store.md §1, §4.1), behind the async interface in sqlite-store.ts. Ingest
 * writes each revocation the bus brings (every node that hears one writes it: idempotent), reads the
 * unexpired ones at start, before it reports ready, and those written since its last read every few
 * seconds (the catch-up). A row is useless once its link would have expired anyway: purged then.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../../store/database.js';
import type { StoredRevocation } from '../../../store/store.js';

export type { StoredRevocation };

export class RevocationStore {
  private readonly insert: Statement<[string, number, number]>;
  private readonly select: Statement<[number, number], StoredRevocation>;
  private readonly remove: Statement<[number]>;

  constructor(db: Db) {
    this.insert = db.prepare('INSERT INTO revocations (jti, expires_at, revoked_at) VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING');
    this.select = db.prepare(
      'SELECT jti, expires_at AS expiresAt, revoked_at AS revokedAt FROM revocations WHERE expires_at > ? AND revoked_at >= ? ORDER BY revoked_at, jti',
    );
    this.remove = db.prepare('DELETE FROM revocations WHERE expires_at <= ?');
  }

  /** Idempotent: a second copy of the same revocation (another node's echo, a retry) changes nothing. */
  revoke(jti: string, expiresAt: number, now: number): void {
    this.insert.run(jti, expiresAt, now);
  }

  /** The revocations written at or after `sinceMs` whose links have not expired at `now`, oldest first. */
  active(sinceMs: number, now: number): StoredRevocation[] {
    return this.select.all(now, sinceMs);
  }

  /** Deletes the rows whose links have expired; returns how many. */
  purgeExpired(now: number): number {
    return this.remove.run(now).changes;
  }
}
