/**
 * The node registry and the users' presence in gateway.sqlite (store.ts NodeRepository), behind the
 * async interface in sqlite-store.ts. One node, one clock: heartbeats are this process's Date.now().
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../../store/database.js';
import type { NodeBeat, NodeRow } from '../../../store/store.js';

type Row = { id: string; version: string; started_at: number; heartbeat_at: number; figures: string };

export class NodeStore {
  private readonly upsert: Statement<[string, string, number, number, string]>;
  private readonly selectLive: Statement<[number], Row>;
  private readonly deleteNode: Statement<[string]>;
  private readonly deletePresenceOf: Statement<[string]>;
  private readonly deleteStale: Statement<[number]>;
  private readonly deleteOrphans: Statement<[]>;
  private readonly putOne: Statement<[string, string, number]>;
  private readonly dropOne: Statement<[string, string]>;
  private readonly countUnique: Statement<[number, string], { n: number }>;

  constructor(private readonly db: Db) {
    this.upsert = db.prepare(
      `INSERT INTO nodes (id, version, started_at, heartbeat_at, figures) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET version = excluded.version, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, figures = excluded.figures`,
    );
    this.selectLive = db.prepare('SELECT id, version, started_at, heartbeat_at, figures FROM nodes WHERE heartbeat_at > ? ORDER BY id');
    this.deleteNode = db.prepare('DELETE FROM nodes WHERE id = ?');
    this.deletePresenceOf = db.prepare('DELETE FROM user_presence WHERE node = ?');
    this.deleteStale = db.prepare('DELETE FROM nodes WHERE heartbeat_at <= ?');
    this.deleteOrphans = db.prepare('DELETE FROM user_presence WHERE node NOT IN (SELECT id FROM nodes)');
    this.putOne = db.prepare(
      'INSERT INTO user_presence (node, user_id, connections) VALUES (?, ?, ?) ON CONFLICT (node, user_id) DO UPDATE SET connections = excluded.connections',
    );
    this.dropOne = db.prepare('DELETE FROM user_presence WHERE node = ? AND user_id = ?');
    this.countUnique = db.prepare(
      `SELECT count(*) AS n FROM (
         SELECT p.user_id FROM user_presence p JOIN nodes n ON n.id = p.node WHERE n.heartbeat_at > ?
         UNION SELECT value FROM json_each(?))`,
    );
  }

  beat(node: NodeBeat, now: number): void {
    this.upsert.run(node.id, node.version, node.startedAt, now, node.figures);
  }

  live(ttlMs: number, now: number): NodeRow[] {
    return this.selectLive.all(now - ttlMs).map((r) => ({
      id: r.id,
      version: r.version,
      startedAt: r.started_at,
      heartbeatAt: r.heartbeat_at,
      figures: r.figures,
      ageMs: Math.max(0, now - r.heartbeat_at),
    }));
  }

  leave(id: string): void {
    this.db.transaction(() => {
      this.deletePresenceOf.run(id);
      this.deleteNode.run(id);
    })();
  }

  purge(ttlMs: number, now: number): number {
    return this.db.transaction(() => {
      const gone = this.deleteStale.run(now - ttlMs).changes;
      this.deleteOrphans.run();
      return gone;
    })();
  }

  putPresence(node: string, entries: readonly (readonly [string, number])[]): void {
    if (entries.length === 0) return;
    this.db.transaction(() => {
      for (const [user, connections] of entries) {
        if (connections > 0) this.putOne.run(node, user, connections);
        else this.dropOne.run(node, user);
      }
    })();
  }

  uniqueUsers(ttlMs: number, also: readonly string[], now: number): number {
    return this.countUnique.get(now - ttlMs, JSON.stringify(also))!.n;
  }
}
