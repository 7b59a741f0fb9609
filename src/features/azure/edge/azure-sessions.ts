/**
 * The Azure Web PubSub connections of one edge thread: per hub, who is connected and in which
 * groups (azure/membership.ts), delivery of the commands ingest hands over, and the reliable
 * protocol's sessions (docs/compat/azure-webpubsub.md §5):
 *
 *   - every data message to a reliable connection gets the next sequenceId and is kept until the
 *     client's sequenceAck covers it; over 1000 messages or 16 MB unacknowledged the connection is
 *     ended (counted as lost);
 *   - when a reliable socket drops, the session stays for GATEWAY_AZURE_SESSION_TTL_S, still
 *     collecting its messages; a socket that comes back with the connection id and reconnection
 *     token takes it over and gets the unacknowledged messages again, in order, with their ids;
 *   - a deliberate end (REST close, session overflow) sends `disconnected` and closes with 1008
 *     (the official client does not try to resume on it).
 * A resuming socket may reach a thread that does not hold its session (SO_REUSEPORT, or another
 * node behind a load balancer). That thread asks ingest, which knows each connection's thread and
 * node: the owner hands the session over (handOver: its state, the old socket closed) and ingest
 * passes it on (adopt). From the moment the question went out (expectHandover) the thread holds
 * this hub's commands and trip events aside, and replays onto the session those the owner had not
 * applied (azure-session-handover.ts), so nothing is lost and nothing delivered twice.
 *
 * Data messages come rendered once (ingest). Sequence ids come from one counter per edge thread, so
 * they rise for every connection (the official client needs rising ids, not consecutive ones) and
 * a group's reliable frame is the same bytes for each of its members here: it is spliced once and
 * goes out through a uWS topic per (hub, group, client kind), like telemetry, which uWS writes in
 * one batch per socket per loop turn. Only the bookkeeping (the unacknowledged queue) is per member.
 * Sends that pick members one by one (excluded, filter, a user, a connection) are sent one by one.
 */
import type { Logger } from 'pino';
import { applyMembershipCommand, forEachRecipient, type Selection } from '../apply-command.js';
import type { AzureCommand, CommandStamp } from '../commands.js';
import { connectedFrame, disconnectedFrame, sequenceInto, type RenderedMessage } from '../frames.js';
import { Membership } from '../membership.js';
import { CLOSE, type Close } from '../../../errors/close-codes.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { AzurePresence, Positions } from '../messages.js';
import type { ChannelEventRecord } from '../../channels/messages.js';
import type { TemplatedApp } from 'uWebSockets.js';
import { endSocket } from '../../../edge/close-socket.js';
import { AzureConnection, JSON_PUBSUB, RELIABLE, SIMPLE, type AzureSessionState, type AzureSocket, type ClientKind } from './azure-connection.js';
import { SessionHandover } from './azure-session-handover.js';

/** The reliable protocol's bound on unacknowledged messages ([SPEC-client] 3.2). */
const MAX_UNACKED_MESSAGES = 1000;
const MAX_UNACKED_BYTES = 16 * 1024 * 1024;
const SWEEP_MS = 1_000;

export interface AzureSessionsDeps {
  /** Publishes to the sockets' topics. */
  readonly app: Pick<TemplatedApp, 'publish'>;
  readonly sessionTtlMs: number;
  /** A socket with more than this buffered is closed with 4000 (a reliable one resumes). */
  readonly maxBufferBytes: number;
  readonly presence: (hub: string, change: AzurePresence) => void;
  /**
   * A connection's life on this node: opened (a new connection's socket, not a resume) and ended
   * for good (closed, or its session expired; not handed over to another thread). The upstream
   * event handlers' `connected` and `disconnected` (azure-upstream.ts).
   */
  readonly lifecycle?: { opened(conn: AzureConnection): void; ended(conn: AzureConnection): void };
  /** The groups a user was added to (addUserToGroup, user-groups.ts): its new connections join them as they open. */
  readonly userGroups?: (hub: string, userId: string) => Iterable<string>;
  readonly stats: RowWriter<EdgeMetric>;
  readonly logger: Logger;
}

export class AzureSessions {
  private readonly hubs = new Map<string, Membership<AzureConnection>>();
  private readonly detached = new Set<AzureConnection>();
  /** Positions in each hub's traffic, what is held for a handover, owners waiting to catch up. */
  readonly handover: SessionHandover;
  /** The last sequence id given on this thread (every reliable delivery takes the next). */
  private seq = 0;
  private readonly scratch = { buffer: Buffer.allocUnsafe(64 * 1024) };
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly deps: AzureSessionsDeps) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
    this.handover = new SessionHandover(deps.stats, deps.logger);
  }

  private members(hub: string): Membership<AzureConnection> {
    let m = this.hubs.get(hub);
    if (m === undefined) this.hubs.set(hub, (m = new Membership((conn, group, joined) => this.groupChanged(conn, group, joined))));
    return m;
  }

  /** The topic a client kind hears a hub's group (or with group null, the whole hub) on. */
  private static topic(kind: ClientKind, hub: string, group: string | null): string {
    return group === null ? `az${kind}:${hub}` : `az${kind}:${hub}:${group}`;
  }

  private groupChanged(conn: AzureConnection, group: string, joined: boolean): void {
    const ws = conn.ws;
    if (ws === null) return;
    if (joined) ws.subscribe(AzureSessions.topic(conn.kind, conn.hub, group));
    else ws.unsubscribe(AzureSessions.topic(conn.kind, conn.hub, group));
  }

  /** A socket takes its connection's place: it hears the hub and each of its groups. */
  private subscribeAll(conn: AzureConnection, ws: AzureSocket): void {
    ws.subscribe(AzureSessions.topic(conn.kind, conn.hub, null));
    for (const group of conn.groups) ws.subscribe(AzureSessions.topic(conn.kind, conn.hub, group));
  }

  /** A session this edge holds, for a client resuming it; null when unknown, ended or the token is wrong. */
  session(hub: string, connectionId: string, reconnectionToken: string): AzureConnection | null {
    const conn = this.hubs.get(hub)?.connections.get(connectionId);
    if (conn === undefined || conn.ended || conn.kind !== RELIABLE || conn.reconnectionToken !== reconnectionToken) return null;
    return conn;
  }

  /** A new connection's socket is open: it is in its token's groups (conn.groups) and its user's, and hears `connected`. */
  open(conn: AzureConnection, ws: AzureSocket): void {
    conn.ws = ws;
    if (conn.userId !== null) for (const group of this.deps.userGroups?.(conn.hub, conn.userId) ?? []) conn.groups.add(group);
    this.members(conn.hub).add(conn);
    this.deps.presence(conn.hub, { op: 'open', id: conn.id, userId: conn.userId, roles: [...conn.roles], groups: [...conn.groups] });
    this.deps.stats.inc('azure_connections');
    this.deps.stats.inc('azure_connections_total');
    if (conn.kind !== SIMPLE) ws.send(connectedFrame(conn.id, conn.userId, conn.reconnectionToken), false);
    this.subscribeAll(conn, ws);
    this.deps.lifecycle?.opened(conn);
  }

  /** A resuming socket takes the session over: `connected` again, then every unacknowledged message. */
  resume(conn: AzureConnection, ws: AzureSocket): void {
    const old = conn.ws;
    if (old !== null) {
      // The old socket has not noticed its drop yet: it gives way, and the new one takes its place in the count.
      old.getUserData().replaced = true;
      endSocket(old, CLOSE.AZURE_RESUMED_ELSEWHERE);
    } else {
      this.detached.delete(conn);
      this.deps.stats.inc('azure_sessions_detached', -1);
      this.deps.stats.inc('azure_connections');
    }
    conn.ws = ws;
    conn.detachedAt = 0;
    this.deps.stats.inc('azure_recoveries_total');
    ws.cork(() => {
      ws.send(connectedFrame(conn.id, conn.userId, conn.reconnectionToken), false);
      for (const entry of conn.unacked) ws.send(sequenceInto(this.scratch, entry.seq, entry.pubsub), false);
    });
    this.subscribeAll(conn, ws); // after the replay: what is published from now on follows it
  }

  /** uWS closed a socket (either side). A reliable session waits for its client; any other ends. */
  socketClosed(ws: AzureSocket): void {
    const data = ws.getUserData();
    const conn = data.conn;
    if (data.replaced || conn.ws !== ws) return;
    conn.ws = null;
    this.deps.stats.inc('azure_connections', -1);
    if (conn.kind === RELIABLE && !conn.ended) {
      conn.detachedAt = Date.now();
      this.detached.add(conn);
      this.deps.stats.inc('azure_sessions_detached');
      return;
    }
    this.endSession(conn);
  }

  /** Ends a connection for good: `disconnected`, then 1008 (the client does not try to resume). */
  close(conn: AzureConnection, reason: string, close: Close = CLOSE.POLICY_VIOLATION): void {
    if (conn.ended) return;
    conn.ended = true;
    conn.endReason = reason;
    const ws = conn.ws;
    if (ws !== null) {
      if (conn.kind !== SIMPLE) ws.send(disconnectedFrame(reason), false);
      endSocket(ws, close, reason);
      return; // socketClosed ends the session
    }
    this.endSession(conn);
  }

  private endSession(conn: AzureConnection): void {
    conn.ended = true;
    if (this.detached.delete(conn)) this.deps.stats.inc('azure_sessions_detached', -1);
    if (conn.unacked.length > 0) this.deps.stats.inc('azure_messages_lost_total', conn.unacked.length);
    conn.unacked.length = 0;
    const members = this.hubs.get(conn.hub);
    if (members?.connections.get(conn.id) !== conn) return;
    members.remove(conn);
    this.deps.presence(conn.hub, { op: 'close', id: conn.id });
    this.deps.lifecycle?.ended(conn);
  }

  /** A command ingest took from the bus. */
  apply(hub: string, command: AzureCommand, message: RenderedMessage | null, stamp?: CommandStamp): void {
    this.handover.arrived(hub, { command, message, stamp });
    const members = this.hubs.get(hub);
    if (members !== undefined) this.applyTo(members, command, message, hub);
    this.handover.applied(hub);
  }

  /**
   * `topicHub`: the hub these members are, whose sockets hear its topics; null for a session being
   * adopted (alone in a membership of its own, no socket yet: no topic may be published for it).
   */
  private applyTo(members: Membership<AzureConnection>, command: AzureCommand, message: RenderedMessage | null, topicHub: string | null): void {
    switch (command.op) {
      case 'send': {
        const skip = command.noEcho ? command.from?.connectionId : undefined;
        this.send(members, { to: command.to, excluded: command.excluded, filter: command.filter, skip }, message!, topicHub);
        return;
      }
      case 'close':
        forEachRecipient(members, { to: command.who, excluded: command.excluded }, (c) => this.close(c, command.reason ?? 'Closed by the service'));
        return;
      case 'join':
      case 'leave':
      case 'leaveAll':
      case 'joinFiltered':
      case 'leaveFiltered':
      case 'grant':
      case 'revoke':
        applyMembershipCommand(members, command);
    }
  }

  /** A channel event bound to a hub (the trips channel): a group message to each of its groups. */
  deliverChannelEvent(event: ChannelEventRecord): void {
    const azure = event.azure!;
    this.handover.arrived(azure.hub, { event });
    const members = this.hubs.get(azure.hub);
    if (members !== undefined) this.deliverEventTo(members, event, azure.hub);
    this.handover.applied(azure.hub);
    this.deps.stats.inc('trip_events_delivered_total');
    this.deps.stats.inc('trip_delivery_latency_ms_total', Math.max(0, Date.now() - azure.writtenAt));
  }

  private deliverEventTo(members: Membership<AzureConnection>, event: ChannelEventRecord, topicHub: string | null): void {
    for (const { group, message } of event.azure!.groups) this.send(members, { to: { kind: 'group', name: group } }, message, topicHub);
  }

  /**
   * A data message to the members a selection names: to a whole group or hub through its topics
   * (publish), to anything picked member by member (a user, a connection, a filter, exclusions)
   * one socket at a time (deliver).
   */
  private send(members: Membership<AzureConnection>, selection: Selection, message: RenderedMessage, topicHub: string | null): void {
    const { to } = selection;
    const whole = (to.kind === 'all' || to.kind === 'group') && (selection.excluded?.length ?? 0) === 0 && (selection.filter ?? '') === '';
    if (topicHub !== null && whole) this.publish(members, topicHub, to.kind === 'group' ? to.name : null, message, selection.skip);
    else forEachRecipient(members, selection, (c) => this.sendTo(c, message));
  }

  /**
   * Owner side: another thread's client resumes this session. Its state leaves with the answer;
   * the old socket, if it has not noticed its drop, is closed; the session is gone from here.
   * Null when the session is unknown, ended, or the token is wrong.
   */
  handOver(hub: string, connectionId: string, reconnectionToken: string): AzureSessionState | null {
    const conn = this.session(hub, connectionId, reconnectionToken);
    if (conn === null) return null;
    const ws = conn.ws;
    if (ws !== null) {
      ws.getUserData().replaced = true;
      endSocket(ws, CLOSE.AZURE_RESUMED_ELSEWHERE);
      this.deps.stats.inc('azure_connections', -1);
    } else if (this.detached.delete(conn)) {
      this.deps.stats.inc('azure_sessions_detached', -1);
    }
    conn.ws = null;
    conn.ended = true; // inert here from now on; the session lives on in the other thread
    this.hubs.get(hub)?.remove(conn);
    return conn.state();
  }

  /** Asking side: ingest forwarded request `id`; hold this hub's traffic until the answer. */
  expectHandover(id: number, hub: string): void {
    this.handover.expect(id, hub);
  }

  /**
   * Asking side: the answer to request `id`. The session takes the traffic held since the question
   * was forwarded (but what the owner applied: at or below its `positions`), then waits detached
   * for its client's socket (resume). Null when there is none.
   */
  adopt(id: number, state: AzureSessionState | null, positions?: Positions): AzureConnection | null {
    const replay = this.handover.release(id, positions);
    if (state === null) return null;
    const conn = AzureConnection.fromState(state);
    this.seq = Math.max(this.seq, conn.lastSeq); // its ids keep rising here
    const alone = new Membership<AzureConnection>();
    alone.add(conn);
    for (const held of replay) {
      if ('event' in held) this.deliverEventTo(alone, held.event, null);
      else this.applyTo(alone, held.command, held.message, null);
    }
    this.deps.stats.inc('azure_sessions_handed_over_total');
    if (conn.ended) {
      // Closed by the service, or over its bound, while crossing: it ends here.
      this.deps.presence(conn.hub, { op: 'close', id: conn.id });
      this.deps.lifecycle?.ended(conn);
      return null;
    }
    this.members(conn.hub).add(conn);
    conn.detachedAt = Date.now();
    this.detached.add(conn);
    this.deps.stats.inc('azure_sessions_detached');
    return conn;
  }

  /** A connection joined or left a group by its own request (already checked). */
  joinOrLeave(conn: AzureConnection, group: string, join: boolean): void {
    const members = this.members(conn.hub);
    if (join) members.join(conn, group);
    else members.leave(conn, group);
    this.deps.presence(conn.hub, { op: join ? 'join' : 'leave', id: conn.id, group });
  }

  /**
   * A message to every member of a group (or of the hub, `group` null) but `skip`: each reliable
   * member records it under one new sequence id, then one publish per client kind sends it to the
   * members' sockets (the sender's own socket left out by publishing from it).
   */
  private publish(members: Membership<AzureConnection>, hub: string, group: string | null, message: RenderedMessage, skip: string | undefined): void {
    const seq = ++this.seq;
    let delivered = 0;
    let reliable = false,
      json = false,
      simple = false;
    let sender: AzureSocket | null = null;
    for (const conn of group === null ? members.connections.values() : members.group(group)) {
      if (conn.id === skip) {
        sender = conn.ws;
        continue;
      }
      if (conn.ended) continue;
      delivered++;
      const ws = conn.ws;
      if (conn.kind === RELIABLE) {
        if (!this.record(conn, seq, message)) continue;
        reliable ||= ws !== null;
      } else if (conn.kind === SIMPLE) {
        simple ||= ws !== null;
      } else {
        json ||= ws !== null;
      }
      if (ws !== null && ws.getBufferedAmount() > this.deps.maxBufferBytes) endSocket(ws, CLOSE.AZURE_SLOW_CONSUMER); // too far behind: a reliable client resumes, others reconnect
    }
    this.deps.stats.inc('azure_messages_delivered_total', delivered);
    const from = sender ?? this.deps.app;
    if (reliable) from.publish(AzureSessions.topic(RELIABLE, hub, group), sequenceInto(this.scratch, seq, message.pubsub), false);
    if (json) from.publish(AzureSessions.topic(JSON_PUBSUB, hub, group), message.pubsub, false);
    if (simple) from.publish(AzureSessions.topic(SIMPLE, hub, group), message.raw, message.rawBinary);
  }

  /** A reliable connection keeps the message until acknowledged; false when that ended it (over its bound). */
  private record(conn: AzureConnection, seq: number, message: RenderedMessage): boolean {
    conn.lastSeq = seq;
    conn.unacked.push({ seq, pubsub: message.pubsub });
    conn.unackedBytes += message.pubsub.length;
    if (conn.unacked.length <= MAX_UNACKED_MESSAGES && conn.unackedBytes <= MAX_UNACKED_BYTES) return true;
    this.close(conn, `More than ${MAX_UNACKED_MESSAGES} messages or ${MAX_UNACKED_BYTES} bytes not acknowledged`);
    return false;
  }

  /** A message to one connection (a user's, a named one, one a filter chose, an upstream user event's answer). */
  sendTo(conn: AzureConnection, message: RenderedMessage): void {
    if (conn.ended) return;
    this.deps.stats.inc('azure_messages_delivered_total');
    const ws = conn.ws;
    if (conn.kind === RELIABLE) {
      const seq = ++this.seq;
      if (!this.record(conn, seq, message)) return;
      if (ws !== null) ws.send(sequenceInto(this.scratch, seq, message.pubsub), false);
    } else if (ws !== null) {
      if (conn.kind === SIMPLE) ws.send(message.raw, message.rawBinary);
      else ws.send(message.pubsub, false);
    }
    if (ws !== null && ws.getBufferedAmount() > this.deps.maxBufferBytes) endSocket(ws, CLOSE.AZURE_SLOW_CONSUMER);
  }

  private sweep(): void {
    const expired = Date.now() - this.deps.sessionTtlMs;
    for (const conn of this.detached) {
      if (conn.detachedAt < expired) {
        conn.endReason ??= 'The session expired: the client did not come back';
        this.endSession(conn);
      }
    }
  }

  closeAll(reason: string = CLOSE.GOING_AWAY.reason): void {
    clearInterval(this.sweeper);
    this.handover.stop();
    for (const members of this.hubs.values()) {
      for (const conn of [...members.connections.values()]) {
        if (conn.ws !== null) endSocket(conn.ws, CLOSE.GOING_AWAY, reason);
      }
    }
  }
}
