/**
 * Azure presence across the cluster, on the ingest thread. Each node publishes on one control topic
 * (GATEWAY_AZURE_PRESENCE_TOPIC, HMAC-tagged) what its edges report of their connections: the
 * changes (open, close, join, leave) batched every 100 ms, and a snapshot of all its connections every
 * GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS, in parts under 200 KB. Every node merges the other nodes'
 * messages into its directory (azure-pipeline.ts), each member tagged with its node: a complete
 * snapshot replaces that node's members, changes apply in between, and a node's members expire when
 * nothing came from it for GATEWAY_AZURE_PRESENCE_TTL_MS. Nothing here is on the message path.
 *
 * Wire (JSON, one message per publish):
 *   {"v":1,"kind":"changes","node","boot","seq","changes":[{"hub","op","id",…}]}
 *   {"v":1,"kind":"snapshot","node","boot","gen","part","parts","members":[{"hub","id","userId","roles","groups"}]}
 * `boot` is random per start: a node that restarted with the same id starts afresh. A node that
 * expired comes back only with a snapshot newer than the last one seen from it, so late messages of
 * a dead node do not bring its connections back. A node first heard from is sent this node's
 * snapshot at once (a starting node learns the cluster without waiting a period). A lost change is
 * healed by the next snapshot.
 *
 * GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS=0 turns it off: nothing is published, nothing received is taken,
 * and the directory holds this node's connections only (one node, or a cluster that gives up the
 * cluster-wide answers; the bench's storm measures presence on against off).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { isGroupName } from '../commands.js';
import type { AzurePresence } from '../messages.js';
import type { AzurePipeline, PresenceMember } from './azure-pipeline.js';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import { parseJsonBytes } from '../../../protocol/bounded-json.js';
import { fail, isObject, isId, isCount } from './control-checks.js';

/** A presence message's bytes stay under this (the control bound is over 1 MB). */
export const PRESENCE_CHUNK_BYTES = 200 * 1024;
export const PRESENCE_BATCH_MS = 100;
const MAX_ROLE = 1200;
const MAX_EXPIRED_REMEMBERED = 1000;

interface Change extends Record<string, unknown> {
  readonly hub: string;
}

interface RemoteNode {
  boot: string;
  lastSeen: number;
  /** The last complete snapshot's generation (-1: none yet). */
  gen: number;
  staging: { gen: number; parts: number; got: (readonly PresenceMember[] | undefined)[]; count: number } | null;
}

export interface ClusterPresenceDeps {
  readonly nodeId: string;
  readonly snapshotMs: number;
  readonly ttlMs: number;
  readonly publish: (payload: string) => void;
  /** False while the bus is down: nothing is published (the snapshot after the resubscribe covers it). */
  readonly subscribed: () => boolean;
  readonly stats: RowWriter<IngestMetric>;
  readonly logger: Logger;
  readonly now?: () => number;
}

function strings(v: unknown, ok: (s: unknown) => boolean, what: string): string[] {
  if (!Array.isArray(v) || !v.every(ok)) fail(`${what} must be a list`);
  return v as string[];
}

function memberOf(v: unknown): PresenceMember {
  if (!isObject(v)) fail('a member must be an object');
  const { hub, id, userId } = v;
  if (!isId(hub) || !isId(id)) fail('a member needs a hub and an id');
  if (userId !== null && !isId(userId)) fail('userId must be a string or null');
  const roles = strings(v.roles, (r) => typeof r === 'string' && r.length <= MAX_ROLE, 'roles');
  const groups = strings(v.groups, isGroupName, 'groups');
  return { hub, id, userId, roles, groups };
}

function changeOf(v: unknown): { hub: string; change: AzurePresence } {
  if (!isObject(v)) fail('a change must be an object');
  if (v.op === 'open') {
    const m = memberOf(v);
    return { hub: m.hub, change: { op: 'open', id: m.id, userId: m.userId, roles: m.roles, groups: m.groups } };
  }
  const { hub, id, op } = v;
  if (!isId(hub) || !isId(id)) fail('a change needs a hub and an id');
  if (op === 'close') return { hub, change: { op, id } };
  if (op === 'join' || op === 'leave') {
    if (!isGroupName(v.group)) fail('a join or leave needs a group');
    return { hub, change: { op, id, group: v.group } };
  }
  fail('op must be open, close, join or leave');
}

export class AzureClusterPresence {
  private readonly boot = randomBytes(8).toString('hex');
  private readonly nodes = new Map<string, RemoteNode>();
  /** Nodes that expired: the boot and generation of their last snapshot (only a newer one revives them). */
  private readonly expired = new Map<string, { boot: string; gen: number }>();
  private pending: Change[] = [];
  private pendingBytes = 0;
  private seq = 0;
  private gen = 0;
  private batchTimer: NodeJS.Timeout | undefined;
  private soonTimer: NodeJS.Timeout | undefined;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private readonly log: RateLimitedLog;
  private readonly now: () => number;
  /** GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS=0: no cluster presence, the directory is this node's. */
  private readonly off: boolean;

  constructor(
    private readonly directory: AzurePipeline,
    private readonly deps: ClusterPresenceDeps,
  ) {
    this.log = new RateLimitedLog(deps.logger);
    this.now = deps.now ?? Date.now;
    this.off = deps.snapshotMs === 0;
  }

  start(): void {
    if (this.off) return;
    this.snapshotTimer = setInterval(() => this.publishSnapshot(), this.deps.snapshotMs);
    this.expiryTimer = setInterval(() => this.expire(), Math.min(1000, Math.floor(this.deps.ttlMs / 5)));
  }

  stop(): void {
    clearInterval(this.snapshotTimer);
    clearInterval(this.expiryTimer);
    clearTimeout(this.batchTimer);
    clearTimeout(this.soonTimer);
  }

  /** The bus (re)subscribed: tell the others at once. */
  subscribed(): void {
    if (this.off) return;
    this.publishSnapshot();
  }

  /** One of this node's connections changed (already applied to the directory). */
  local(hub: string, change: AzurePresence): void {
    if (this.off) return;
    const entry: Change = { hub, ...change };
    this.pending.push(entry);
    this.pendingBytes += 64 + hub.length + JSON.stringify(change).length;
    if (this.pendingBytes >= PRESENCE_CHUNK_BYTES) this.flush();
    else this.batchTimer ??= setTimeout(() => this.flush(), PRESENCE_BATCH_MS);
  }

  /** Publishes the pending changes (in parts under the bound). */
  flush(): void {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    const changes = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (changes.length === 0 || !this.deps.subscribed()) return;
    for (const part of this.chunks(changes)) {
      this.deps.publish(
        `{"v":1,"kind":"changes","node":${JSON.stringify(this.deps.nodeId)},"boot":"${this.boot}","seq":${++this.seq},"changes":[${part.join(',')}]}`,
      );
    }
  }

  /** Publishes a snapshot of this node's connections (the pending changes first). */
  publishSnapshot(): void {
    if (this.off) return;
    clearTimeout(this.soonTimer);
    this.soonTimer = undefined;
    this.flush();
    if (!this.deps.subscribed()) return;
    const parts = this.chunks(this.directory.localMembers());
    if (parts.length === 0) parts.push([]);
    const gen = ++this.gen;
    const head = `{"v":1,"kind":"snapshot","node":${JSON.stringify(this.deps.nodeId)},"boot":"${this.boot}","gen":${gen}`;
    parts.forEach((part, i) => this.deps.publish(`${head},"part":${i},"parts":${parts.length},"members":[${part.join(',')}]}`));
  }

  private chunks(items: Iterable<object>): string[][] {
    const parts: string[][] = [];
    let part: string[] = [];
    let bytes = 0;
    for (const item of items) {
      const json = JSON.stringify(item);
      if (bytes + json.length > PRESENCE_CHUNK_BYTES - 512 && part.length > 0) {
        parts.push(part);
        part = [];
        bytes = 0;
      }
      part.push(json);
      bytes += json.length + 1;
    }
    if (part.length > 0) parts.push(part);
    return parts;
  }

  /** One message from the presence topic (authenticated already). */
  receive(body: Buffer): void {
    if (this.off) return;
    let message: Record<string, unknown>;
    try {
      if (body.byteLength > PRESENCE_CHUNK_BYTES + 64 * 1024) fail(`${body.byteLength} bytes`);
      const value = parseJsonBytes(body, { maxDepth: 6, forbidKeys: true });
      if (!isObject(value) || value.v !== 1) fail('not a presence message of version 1');
      message = value;
      if (!isId(message.node) || typeof message.boot !== 'string' || message.boot.length > 64) fail('node and boot are needed');
      if (message.node === this.deps.nodeId) return; // our own, back from the broker
      if (message.kind === 'changes') {
        if (!isCount(message.seq) || !Array.isArray(message.changes)) fail('changes need seq and a list');
        this.changes(message.node, message.boot, message.changes.map(changeOf));
      } else if (message.kind === 'snapshot') {
        const { gen, part, parts } = message;
        if (!isCount(gen) || !isCount(part) || !isCount(parts) || part >= parts || parts > 10_000 || !Array.isArray(message.members))
          fail('a snapshot needs gen, part < parts and members');
        this.snapshot(message.node, message.boot, gen, part, parts, message.members.map(memberOf));
      } else fail('kind must be changes or snapshot');
    } catch (err) {
      this.deps.stats.inc('azure_presence_rejected_total');
      this.log.warn({ why: err instanceof Error ? err.message : String(err), bytes: body.byteLength }, 'azure presence message dropped');
      return;
    }
    this.deps.stats.inc('azure_presence_received_total');
    this.deps.stats.set('azure_presence_remote_connections', this.directory.remoteConnections);
  }

  /** The node's state for a message of `boot`; null: it expired and only a newer snapshot revives it. */
  private nodeFor(node: string, boot: string, snapshotGen?: number): RemoteNode | null {
    let state = this.nodes.get(node);
    if (state === undefined) {
      const dead = this.expired.get(node);
      if (dead !== undefined && dead.boot === boot && (snapshotGen === undefined || snapshotGen <= dead.gen)) return null;
      this.expired.delete(node);
      state = { boot, lastSeen: this.now(), gen: -1, staging: null };
      this.nodes.set(node, state);
      // a node we did not know (started, or back): it hears our connections now, not in a period
      this.soonTimer ??= setTimeout(() => this.publishSnapshot(), PRESENCE_BATCH_MS);
    } else if (state.boot !== boot) {
      this.directory.dropNode(node); // restarted under the same id: what it held is gone
      state.boot = boot;
      state.gen = -1;
      state.staging = null;
    }
    state.lastSeen = this.now();
    return state;
  }

  private changes(node: string, boot: string, changes: readonly { hub: string; change: AzurePresence }[]): void {
    if (this.nodeFor(node, boot) === null) return;
    for (const { hub, change } of changes) this.directory.presence(hub, change, node);
  }

  private snapshot(node: string, boot: string, gen: number, part: number, parts: number, members: readonly PresenceMember[]): void {
    const state = this.nodeFor(node, boot, gen);
    if (state === null || gen <= state.gen) return;
    if (state.staging === null || state.staging.gen !== gen || state.staging.parts !== parts) {
      state.staging = { gen, parts, got: new Array<readonly PresenceMember[] | undefined>(parts), count: 0 };
    }
    const staging = state.staging;
    if (staging.got[part] === undefined) staging.count++;
    staging.got[part] = members;
    if (staging.count < parts) return;
    state.staging = null;
    state.gen = gen;
    this.directory.replaceNode(
      node,
      staging.got.flatMap((p) => p ?? []),
    );
  }

  /** Drops the nodes silent for the TTL (the timer calls it; tests too). */
  expire(): void {
    const now = this.now();
    for (const [node, state] of this.nodes) {
      if (now - state.lastSeen <= this.deps.ttlMs) continue;
      this.nodes.delete(node);
      const connections = this.directory.dropNode(node);
      this.expired.set(node, { boot: state.boot, gen: state.gen });
      if (this.expired.size > MAX_EXPIRED_REMEMBERED) this.expired.delete(this.expired.keys().next().value as string);
      this.deps.stats.inc('azure_presence_expired_total');
      this.deps.logger.warn({ node, connections, silentMs: now - state.lastSeen }, `azure presence of node ${node} expired`);
    }
    this.deps.stats.set('azure_presence_remote_connections', this.directory.remoteConnections);
  }

  /** The nodes heard from and not expired (tests). */
  get liveNodes(): string[] {
    return [...this.nodes.keys()];
  }
}
