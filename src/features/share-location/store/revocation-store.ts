/**
 * Share-link revocations kept in gateway.sqlite (store/database.ts), so a restarted node refuses
 * the links revoked before it stopped. Ingest writes each revocation the bus brings (every node
 * that hears one writes it: idempotent) and reads the unexpired ones at start, before it reports
 * ready. A row is useless once its link would have expired anyway: purged then.
 * The shape is docs/design/cluster-store.md §1's RevocationRepository, synchronous until the store
 * is behind its port.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../../store/database.js';

export interface StoredRevocation {
  readonly jti: string;
  readonly expiresAt: number;
}

export class RevocationStore {
  private readonly insert: Statement<[string, number, number]>;
  private readonly select: Statement<[number], StoredRevocation>;
  private readonly remove: Statement<[number]>;

  constructor(db: Db) {
    this.insert = db.prepare('INSERT INTO revocations (jti, expires_at, revoked_at) VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING');
    this.select = db.prepare('SELECT jti, expires_at AS expiresAt FROM revocations WHERE expires_at > ? ORDER BY revoked_at');
    this.remove = db.prepare('DELETE FROM revocations WHERE expires_at <= ?');
  }

  /** Idempotent: a second copy of the same revocation (another node's echo, a retry) changes nothing. */
  revoke(jti: string, expiresAt: number, now: number): void {
    this.insert.run(jti, expiresAt, now);
  }

  /** The revocations whose links have not expired yet, oldest first. */
  active(now: number): StoredRevocation[] {
    return this.select.all(now);
  }

  /** Deletes the rows whose links have expired; returns how many. */
  purgeExpired(now: number): number {
    return this.remove.run(now).changes;
  }
}
