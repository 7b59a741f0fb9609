/**
 * The node registry and the users' presence on PostgreSQL (store.ts NodeRepository), shared by every
 * node. Heartbeats and ages are the database's clock (clock_timestamp(), ms), so the nodes' clocks
 * never need to agree: a node is live while `now − heartbeat_at < ttl` on that one clock.
 */
import type { NodeBeat, NodeRepository, NodeRow } from '../store.js';
import type { PgSession } from './pg-session.js';

const NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

export class PgNodes implements NodeRepository {
  constructor(private readonly db: PgSession) {}

  async beat(node: NodeBeat): Promise<void> {
    await this.db.query(
      `INSERT INTO nodes (id, version, started_at, heartbeat_at, figures) VALUES ($1, $2, $3, ${NOW_MS}, $4)
       ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at, figures = EXCLUDED.figures`,
      [node.id, node.version, node.startedAt, node.figures],
    );
  }

  async live(ttlMs: number): Promise<NodeRow[]> {
    const { rows } = await this.db.query<{ id: string; version: string; started_at: string; heartbeat_at: string; figures: string; age: string }>(
      `SELECT id, version, started_at, heartbeat_at, figures, ${NOW_MS} - heartbeat_at AS age FROM nodes
       WHERE heartbeat_at > ${NOW_MS} - $1 ORDER BY id COLLATE "C"`,
      [ttlMs],
    );
    return rows.map((r) => ({
      id: r.id,
      version: r.version,
      startedAt: Number(r.started_at),
      heartbeatAt: Number(r.heartbeat_at),
      figures: r.figures,
      ageMs: Math.max(0, Number(r.age)),
    }));
  }

  async leave(id: string): Promise<void> {
    await this.db.query('WITH gone AS (DELETE FROM user_presence WHERE node = $1) DELETE FROM nodes WHERE id = $1', [id]);
  }

  async purge(ttlMs: number): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(
      `WITH gone AS (DELETE FROM nodes WHERE heartbeat_at <= ${NOW_MS} - $1 RETURNING id),
            orphans AS (DELETE FROM user_presence p WHERE p.node IN (SELECT id FROM gone) OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = p.node))
       SELECT count(*) AS n FROM gone`,
      [ttlMs],
    );
    return Number(rows[0].n);
  }

  async putPresence(node: string, entries: readonly (readonly [string, number])[]): Promise<void> {
    if (entries.length === 0) return;
    const users = entries.map((e) => e[0]);
    const counts = entries.map((e) => e[1]);
    await this.db.query(
      `WITH input AS (SELECT * FROM unnest($2::text[], $3::int[]) AS t(user_id, connections)),
            dropped AS (DELETE FROM user_presence p USING input i WHERE p.node = $1 AND p.user_id = i.user_id AND i.connections <= 0)
       INSERT INTO user_presence (node, user_id, connections) SELECT $1, user_id, connections FROM input WHERE connections > 0
       ON CONFLICT (node, user_id) DO UPDATE SET connections = EXCLUDED.connections`,
      [node, users, counts],
    );
  }

  async uniqueUsers(ttlMs: number, also: readonly string[]): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM (
         SELECT p.user_id FROM user_presence p JOIN nodes n ON n.id = p.node WHERE n.heartbeat_at > ${NOW_MS} - $1
         UNION SELECT unnest($2::text[])) u`,
      [ttlMs, also],
    );
    return Number(rows[0].n);
  }
}
