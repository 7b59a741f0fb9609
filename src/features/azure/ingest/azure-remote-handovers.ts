/**
 * The handover of a reliable session between nodes (docs/design/cluster-presence.md §2), on the
 * ingest thread. A client whose socket came back on this node (B) for a session another node (A)
 * holds, as the cluster directory says (azure-cluster-presence.ts):
 *
 *   B  the asking edge is told `start` (it holds the hub's traffic from now) and answers with its
 *      positions (edge/azure-session-handover.ts); B publishes the question to A's handover topic;
 *   A  forwards it to the owner edge, which waits until it has applied what B had, hands the
 *      session over (the old socket closed, no `disconnected`) with its own positions; A publishes
 *      the state back, moves the connection to B in its directory (its presence says `close`: the
 *      others keep B's `open`, whichever comes first) and keeps its id reserved for
 *      GATEWAY_AZURE_PRESENCE_TTL_MS (a second asker gets null);
 *   B  the edge installs the session and applies what it held beyond A's positions; the connection
 *      joins B's directory (and so the other nodes').
 *
 * Each node listens on `<GATEWAY_AZURE_PRESENCE_TOPIC>/handover/<its node id>` (a control topic:
 * HMAC-tagged). Wire (JSON):
 *   {"v":1,"kind":"ask","from","ref","hub","connectionId","reconnectionToken","positions":[[key,n],…]}
 *   {"v":1,"kind":"state","from","ref","session":null|{…, "unacked":[[seq,"<base64>"],…]},"positions"}
 * A state over MAX_HANDOVER_BYTES is not sent (null, counted): the client starts a new connection.
 * No answer within HANDOVER_TIMEOUT_MS: null to the edge (its hold replayed onto nothing), counted.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { isGroupName, MAX_MESSAGE_BYTES } from '../commands.js';
import type { AzureSessionState } from '../edge/azure-connection.js';
import type { AzureToEdge, Positions } from '../messages.js';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import { parseJsonBytes } from '../../../protocol/bounded-json.js';
import { Malformed, fail, isObject, isId, isCount } from './control-checks.js';

/** The largest handover message published or taken (the control bound is 1 MiB + 64 KiB). */
export const MAX_HANDOVER_BYTES = MAX_MESSAGE_BYTES;
/** How long B waits for A's answer (A's owner waits up to 2 s to catch up). */
export const HANDOVER_TIMEOUT_MS = 5000;
const MAX_POSITIONS = 4096;

export interface RemoteHandoverDeps {
  readonly nodeId: string;
  /** `<GATEWAY_AZURE_PRESENCE_TOPIC>/handover/<node>` */
  readonly topicOf: (node: string) => string;
  readonly publish: (topic: string, payload: string) => void;
  /** The node holding a connection (cluster directory): null here, undefined nowhere known. */
  readonly nodeOf: (hub: string, connectionId: string) => string | null | undefined;
  readonly send: (edge: number, message: AzureToEdge) => void;
  /** Forwards another node's question to the owner edge; false when no edge here holds it. */
  readonly askOwner: (
    hub: string,
    connectionId: string,
    reconnectionToken: string,
    positions: Positions,
    answered: (session: AzureSessionState | null, positions: Positions) => void,
  ) => boolean;
  /** The connection left this node for `node` (handed over) or arrived on it (adopted by `edge`): the directory follows. */
  readonly moved: { away(session: AzureSessionState, node: string): void; here(session: AzureSessionState, edge: number): void };
  readonly reserveMs: number;
  readonly timeoutMs?: number;
  readonly stats: RowWriter<IngestMetric>;
  readonly logger: Logger;
  readonly now?: () => number;
}

function positionsOf(v: unknown): Positions {
  if (!Array.isArray(v) || v.length > MAX_POSITIONS) fail('positions must be a list');
  for (const p of v) if (!Array.isArray(p) || p.length !== 2 || !isId(p[0]) || !isCount(p[1])) fail('a position is [key, n]');
  return v as Positions;
}

function sessionOf(v: unknown): AzureSessionState {
  if (!isObject(v)) fail('the session must be an object');
  const { id, hub, userId, reconnectionToken, lastSeq, upstream } = v;
  if (!isId(id) || !isId(hub) || !isId(reconnectionToken) || !isCount(lastSeq)) fail('the session needs id, hub, reconnectionToken and lastSeq');
  if (userId !== null && !isId(userId)) fail('userId must be a string or null');
  const roles = v.roles,
    groups = v.groups,
    ackIds = v.ackIds,
    unacked = v.unacked;
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string' && r.length <= 1200)) fail('roles must be strings');
  if (!Array.isArray(groups) || !groups.every(isGroupName)) fail('groups must be group names');
  if (!Array.isArray(ackIds) || !ackIds.every(isCount)) fail('ackIds must be counts');
  if (!Array.isArray(unacked)) fail('unacked must be a list');
  const entries = unacked.map((e) => {
    if (!Array.isArray(e) || e.length !== 2 || !isCount(e[0]) || typeof e[1] !== 'string') fail('an unacked entry is [seq, base64]');
    return { seq: e[0], pubsub: new Uint8Array(Buffer.from(e[1], 'base64')) };
  });
  let up: AzureSessionState['upstream'];
  if (upstream !== undefined) {
    if (!isObject(upstream) || typeof upstream.subprotocol !== 'string' || (upstream.state !== null && typeof upstream.state !== 'string'))
      fail('upstream must be {state, subprotocol}');
    up = { state: upstream.state as string | null, subprotocol: upstream.subprotocol };
  }
  return { id, hub, userId, roles, groups, reconnectionToken, lastSeq, unacked: entries, ackIds, upstream: up };
}

function sessionJson(s: AzureSessionState): string {
  return JSON.stringify({
    ...s,
    unacked: s.unacked.map((e) => [e.seq, Buffer.from(e.pubsub.buffer, e.pubsub.byteOffset, e.pubsub.byteLength).toString('base64')]),
  });
}

interface Asked {
  readonly edge: number;
  readonly id: number;
  readonly hub: string;
  readonly node: string;
  readonly connectionId: string;
  readonly reconnectionToken: string;
  timer?: NodeJS.Timeout;
}

export class AzureRemoteHandovers {
  private readonly boot = randomBytes(6).toString('hex');
  private nextRef = 1;
  /** B side: questions by ref (from `start` until the answer or the timeout). */
  private readonly asked = new Map<string, Asked>();
  /** B side: the ref of an edge's request, until its positions come. */
  private readonly byEdgeRequest = new Map<string, string>();
  /** A side: connections handed to another node, until when they are refused. */
  private readonly reserved = new Map<string, number>();
  private readonly log: RateLimitedLog;
  private readonly now: () => number;

  constructor(private readonly deps: RemoteHandoverDeps) {
    this.log = new RateLimitedLog(deps.logger);
    this.now = deps.now ?? Date.now;
  }

  /** This node's own handover topic. */
  get topic(): string {
    return this.deps.topicOf(this.deps.nodeId);
  }

  /**
   * B side: edge `edge`'s request `id` for a session no edge here holds. True when another node
   * holds it (the edge is told `start`); false when none does (the caller answers null).
   */
  ask(edge: number, id: number, hub: string, connectionId: string, reconnectionToken: string): boolean {
    const node = this.deps.nodeOf(hub, connectionId);
    if (node === null || node === undefined || node === this.deps.nodeId) return false;
    const ref = `${this.boot}:${this.nextRef++}`;
    this.asked.set(ref, { edge, id, hub, node, connectionId, reconnectionToken });
    this.byEdgeRequest.set(`${edge}:${id}`, ref);
    this.deps.send(edge, { t: 'azure-handover-start', id, hub, remote: true });
    return true;
  }

  /** B side: the asking edge's positions at `start`; the question goes to the owner node now. */
  positions(edge: number, id: number, positions: Positions): void {
    const key = `${edge}:${id}`;
    const ref = this.byEdgeRequest.get(key);
    this.byEdgeRequest.delete(key);
    const asked = ref === undefined ? undefined : this.asked.get(ref);
    if (asked === undefined) return;
    this.deps.stats.inc('azure_remote_handovers_asked_total');
    asked.timer = setTimeout(() => {
      this.asked.delete(ref!);
      this.failed('no answer from the owner node in time', asked);
      this.deps.send(asked.edge, { t: 'azure-handover', id: asked.id, session: null });
    }, this.deps.timeoutMs ?? HANDOVER_TIMEOUT_MS);
    const { hub, connectionId, reconnectionToken } = asked;
    this.deps.publish(
      this.deps.topicOf(asked.node),
      JSON.stringify({ v: 1, kind: 'ask', from: this.deps.nodeId, ref, hub, connectionId, reconnectionToken, positions }),
    );
  }

  private failed(why: string, fields: { connectionId: string; node?: string }): void {
    this.deps.stats.inc('azure_remote_handover_failures_total');
    this.log.warn(
      { why, connectionId: fields.connectionId, node: fields.node },
      'azure session handover across nodes failed: the client starts a new connection',
    );
  }

  /** One message on this node's handover topic (authenticated already). */
  receive(body: Buffer): void {
    try {
      if (body.byteLength > MAX_HANDOVER_BYTES) fail(`${body.byteLength} bytes`);
      const m = parseJsonBytes(body, { maxDepth: 8, forbidKeys: true });
      if (!isObject(m) || m.v !== 1 || !isId(m.from) || !isId(m.ref)) fail('not a handover message of version 1');
      if (m.kind === 'ask') {
        if (!isId(m.hub) || !isId(m.connectionId) || !isId(m.reconnectionToken)) fail('an ask needs hub, connectionId and reconnectionToken');
        this.asks(m.from, m.ref, m.hub, m.connectionId, m.reconnectionToken, positionsOf(m.positions));
      } else if (m.kind === 'state') {
        this.answered(m.ref, m.session === null ? null : sessionOf(m.session), positionsOf(m.positions));
      } else fail('kind must be ask or state');
    } catch (err) {
      if (!(err instanceof Malformed) && !(err instanceof Error && err.name === 'BoundedJsonError')) throw err;
      this.deps.stats.inc('azure_remote_handover_rejected_total');
      this.log.warn({ why: err.message, bytes: body.byteLength }, 'azure handover message dropped');
    }
  }

  /** A side: node `from` asks for a session. */
  private asks(from: string, ref: string, hub: string, connectionId: string, reconnectionToken: string, positions: Positions): void {
    const reply = (session: AzureSessionState | null, at: Positions) => {
      let payload = `{"v":1,"kind":"state","from":${JSON.stringify(this.deps.nodeId)},"ref":${JSON.stringify(ref)},"positions":${JSON.stringify(at)},"session":`;
      payload += session === null ? 'null}' : `${sessionJson(session)}}`;
      if (Buffer.byteLength(payload) > MAX_HANDOVER_BYTES) {
        this.failed(`the session's state is over ${MAX_HANDOVER_BYTES} bytes`, { connectionId, node: from });
        payload = `{"v":1,"kind":"state","from":${JSON.stringify(this.deps.nodeId)},"ref":${JSON.stringify(ref)},"positions":[],"session":null}`;
      }
      this.deps.publish(this.deps.topicOf(from), payload);
    };
    const until = this.reserved.get(connectionId);
    if (until !== undefined && until > this.now()) return reply(null, []);
    if (until !== undefined) this.reserved.delete(connectionId);
    const forwarded = this.deps.askOwner(hub, connectionId, reconnectionToken, positions, (session, at) => {
      if (session !== null) {
        this.reserve(connectionId);
        this.deps.moved.away(session, from);
        this.deps.stats.inc('azure_remote_handovers_served_total');
      }
      reply(session, at);
    });
    if (!forwarded) reply(null, []);
  }

  private reserve(connectionId: string): void {
    const now = this.now();
    for (const [id, until] of this.reserved) {
      if (until > now) break; // in order of reservation, so of expiry
      this.reserved.delete(id);
    }
    this.reserved.set(connectionId, now + this.deps.reserveMs);
  }

  /** B side: the owner node's answer. */
  private answered(ref: string, session: AzureSessionState | null, positions: Positions): void {
    const asked = this.asked.get(ref);
    if (asked === undefined) return; // timed out, or not ours
    this.asked.delete(ref);
    clearTimeout(asked.timer);
    if (session !== null && (session.id !== asked.connectionId || session.hub !== asked.hub || session.reconnectionToken !== asked.reconnectionToken)) {
      this.deps.stats.inc('azure_remote_handover_rejected_total');
      session = null;
    }
    if (session === null) this.failed('the owner node had no such session', { connectionId: asked.connectionId, node: asked.node });
    else {
      this.deps.moved.here(session, asked.edge);
      this.deps.stats.inc('azure_remote_handovers_total');
    }
    this.deps.send(asked.edge, { t: 'azure-handover', id: asked.id, session, positions });
  }

  stop(): void {
    for (const asked of this.asked.values()) clearTimeout(asked.timer);
  }
}
