/**
 * The node registry's writer on the ingest thread (docs/guide.md "Clustering"): every
 * GATEWAY_NODE_HEARTBEAT_MS this node upserts its row in the store's `nodes` (id, version, start,
 * its figures from the shared stats and its connected equipment), reads the live nodes (heartbeat
 * younger than GATEWAY_NODE_TTL_MS, the store's clock), purges the stale ones and their presence,
 * and logs each node that joined or left. Once a second it writes the /ws/connect users whose
 * connection count on this node changed (the edges' diffs, presence-counts.ts) in one statement.
 *
 * Ingest holds the store (context.store), the shared stats and the Azure directory, so it has every
 * figure a heartbeat carries; the store calls are async on their own timers, never on the telemetry
 * path. A failed beat is counted and logged (rate-limited); the node then looks stale to the others
 * until a beat succeeds, and re-writes all of its presence (another node may have purged it).
 */
import type { Logger } from 'pino';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { NodeRepository, NodeRow } from '../../../store/store.js';
import type { NodeFigures } from '../node-figures.js';

const PRESENCE_FLUSH_MS = 1_000;

export interface NodeRegistryDeps {
  readonly store: NodeRepository;
  readonly id: string;
  readonly version: string;
  readonly startedAt: number;
  readonly heartbeatMs: number;
  readonly ttlMs: number;
  readonly figures: () => NodeFigures;
  readonly stats: RowWriter<IngestMetric>;
  readonly logger: Logger;
}

export class NodeRegistry {
  private readonly beatTimer: NodeJS.Timeout;
  private readonly flushTimer: NodeJS.Timeout;
  private readonly storeLog: RateLimitedLog;
  /** The other live nodes at the last read, by id. */
  private others = new Map<string, NodeRow>();
  private beating = false;
  private flushing = false;
  private stopped = false;
  private lastBeatAt = 0;
  /** Connections per user on each edge, and the users whose node total must be written. */
  private readonly perEdge = new Map<number, Map<string, number>>();
  private readonly pending = new Set<string>();
  readonly ready: Promise<void>;

  constructor(private readonly deps: NodeRegistryDeps) {
    this.storeLog = new RateLimitedLog(deps.logger);
    // A row of this id from an earlier run that died (SQLite keeps the id) holds presence that is no longer true.
    this.ready = deps.store
      .leave(deps.id)
      .then(() => this.beat())
      .catch((err: unknown) => this.storeLog.warn({ err }, 'could not clear this node from the registry at start'));
    this.beatTimer = setInterval(() => void this.beat(), deps.heartbeatMs);
    this.flushTimer = setInterval(() => void this.flush(), PRESENCE_FLUSH_MS);
  }

  /** The other live nodes at the last heartbeat. */
  otherNodes(): NodeRow[] {
    return [...this.others.values()];
  }

  /** The equipment codes the other live nodes list as connected to them. */
  *otherEquipment(): Iterable<string> {
    for (const node of this.others.values()) {
      try {
        const figures = JSON.parse(node.figures) as Partial<NodeFigures>;
        if (Array.isArray(figures.trips?.equipment)) yield* figures.trips.equipment.filter((c): c is string => typeof c === 'string');
      } catch {
        // a node of another version with figures this one cannot read: it lists no equipment
      }
    }
  }

  /** An edge's diff: each user's connection count on that edge now. */
  presence(edge: number, entries: readonly (readonly [string, number])[]): void {
    let counts = this.perEdge.get(edge);
    if (counts === undefined) this.perEdge.set(edge, (counts = new Map<string, number>()));
    for (const [user, n] of entries) {
      if (n > 0) counts.set(user, n);
      else counts.delete(user);
      this.pending.add(user);
    }
  }

  private nodeCount(user: string): number {
    let total = 0;
    for (const counts of this.perEdge.values()) total += counts.get(user) ?? 0;
    return total;
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.stopped || this.pending.size === 0) return;
    this.flushing = true;
    const users = [...this.pending];
    this.pending.clear();
    try {
      await this.deps.store.putPresence(
        this.deps.id,
        users.map((u) => [u, this.nodeCount(u)] as const),
      );
    } catch (err) {
      for (const u of users) this.pending.add(u);
      if (!this.stopped) this.storeLog.warn({ err, users: users.length }, 'could not write the users’ presence; tried again in 1 s');
    } finally {
      this.flushing = false;
    }
  }

  private async beat(): Promise<void> {
    if (this.beating || this.stopped) return;
    this.beating = true;
    const { store, id, ttlMs, logger } = this.deps;
    try {
      await store.beat({ id, version: this.deps.version, startedAt: this.deps.startedAt, figures: JSON.stringify(this.deps.figures()) });
      const now = Date.now();
      if (this.lastBeatAt !== 0 && now - this.lastBeatAt >= ttlMs) {
        // Stale long enough for another node to have purged this one's presence: write all of it again.
        for (const counts of this.perEdge.values()) for (const user of counts.keys()) this.pending.add(user);
      }
      this.lastBeatAt = now;
      await store.purge(ttlMs);
      const live = await store.live(ttlMs);
      if (this.stopped) return;
      const next = new Map(live.filter((n) => n.id !== id).map((n) => [n.id, n]));
      for (const [other, row] of next) {
        if (!this.others.has(other)) logger.info({ node: other, version: row.version, startedAt: new Date(row.startedAt).toISOString() }, 'node joined');
      }
      for (const [other, row] of this.others) {
        if (!next.has(other)) logger.info({ node: other, lastHeartbeatAgeMs: row.ageMs }, 'node left');
      }
      this.others = next;
      this.deps.stats.set('cluster_nodes_live', live.some((n) => n.id === id) ? live.length : live.length + 1);
    } catch (err) {
      this.deps.stats.inc('node_heartbeat_failures_total');
      if (!this.stopped) this.storeLog.warn({ err }, 'could not write this node’s heartbeat; tried again next beat');
    } finally {
      this.beating = false;
    }
  }

  /** Shutdown: the timers stop and this node's row and presence leave the registry at once (the others log "node left"). */
  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.beatTimer);
    clearInterval(this.flushTimer);
    await this.deps.store.leave(this.deps.id).catch((err: unknown) => this.deps.logger.warn({ err }, 'could not remove this node from the registry'));
  }
}
