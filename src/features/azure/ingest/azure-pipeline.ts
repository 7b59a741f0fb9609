/**
 * Azure Web PubSub traffic on the ingest thread. Every command (REST data plane, client group
 * messages, membership) crosses the bus on `<GATEWAY_AZURE_TOPIC>/<hub>`, so every node takes it;
 * here it is parsed and checked once, a send is rendered once (azure/frames.ts), and the result
 * goes to every edge, which applies it to the connections it holds.
 *
 * Ingest also keeps the directory of Azure connections (from the edges' presence reports, the other
 * nodes' presence messages (azure-cluster-presence.ts) and the same membership commands) and answers
 * the REST existence checks from it: which connections, groups and users exist in the cluster, and
 * with which permissions. A remote member carries its node; a snapshot replaces a node's members and
 * its expiry drops them.
 */
import type { Logger } from 'pino';
import { applyMembershipCommand } from '../apply-command.js';
import { checkPayload, decodeAzureMessage, MAX_MESSAGE_BYTES, servesHub, type AzureCommand, type CommandStamp } from '../commands.js';
import { renderMessage, type RenderedMessage } from '../frames.js';
import { Membership, type Member } from '../membership.js';
import { compileFilter } from '../odata-filter.js';
import { hasPermission } from '../permissions.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { AzureAnswer, AzurePresence, AzureQuery, AzureToEdge } from '../messages.js';

/** A directory entry: the hub it is on, and the node that holds it (null: this node's edges). */
export interface DirectoryMember extends Member {
  readonly hub: string;
  readonly node: string | null;
}

/** A connection as presence messages carry it. */
export interface PresenceMember {
  readonly hub: string;
  readonly id: string;
  readonly userId: string | null;
  readonly roles: readonly string[];
  readonly groups: readonly string[];
}

export class AzurePipeline {
  private readonly directory = new Map<string, Membership<DirectoryMember>>();
  /** The members of each other node. */
  private readonly remote = new Map<string, Set<DirectoryMember>>();
  private remoteCount = 0;
  private readonly log: RateLimitedLog;

  constructor(
    private readonly hubs: readonly string[] | null,
    private readonly maxJsonDepth: number,
    private readonly broadcast: (message: AzureToEdge) => void,
    private readonly stats: RowWriter<IngestMetric>,
    logger: Logger,
  ) {
    this.log = new RateLimitedLog(logger);
  }

  private members(hub: string): Membership<DirectoryMember> {
    let m = this.directory.get(hub);
    if (m === undefined) this.directory.set(hub, (m = new Membership()));
    return m;
  }

  /** One bus message on `<prefix>/<hub>`. */
  handle(hub: string, bytes: Buffer): void {
    this.stats.inc('azure_commands_total');
    if (!servesHub(this.hubs, hub)) return this.reject(`hub ${JSON.stringify(hub.slice(0, 64))} is not served`);
    if (bytes.byteLength > MAX_MESSAGE_BYTES + 64 * 1024) return this.reject(`command of ${bytes.byteLength} bytes`);
    let command: AzureCommand;
    let payload: Buffer;
    let stamp: CommandStamp | undefined;
    try {
      ({ command, payload, stamp } = decodeAzureMessage(bytes, this.maxJsonDepth));
      const filter = command.op === 'send' || command.op === 'joinFiltered' || command.op === 'leaveFiltered' ? command.filter : undefined;
      if (filter !== undefined && filter !== '') compileFilter(filter);
      if (command.op === 'send') checkPayload(command.dataType, payload, this.maxJsonDepth);
    } catch (err) {
      return this.reject(err instanceof GatewayError ? err.message : String(err));
    }
    let message: RenderedMessage | null = null;
    if (command.op === 'send') {
      const group = command.to.kind === 'group' ? command.to.name : null;
      message = renderMessage(group, command.dataType, payload, command.from?.userId ?? null);
    } else {
      applyMembershipCommand(this.members(hub), command);
    }
    this.broadcast(stamp === undefined ? { t: 'azure', hub, command, message } : { t: 'azure', hub, command, message, stamp });
  }

  private reject(why: string): void {
    this.stats.inc('azure_commands_rejected_total');
    this.log.warn({ why }, 'azure command rejected');
  }

  /** An edge's connection opened, closed, joined or left a group (node null), or another node's did. */
  presence(hub: string, change: AzurePresence, node: string | null = null): void {
    if (node !== null && !servesHub(this.hubs, hub)) return;
    const members = this.members(hub);
    if (change.op === 'open') {
      this.add({ hub, id: change.id, userId: change.userId, roles: change.roles, groups: change.groups }, node);
      return;
    }
    const member = members.connections.get(change.id);
    if (member === undefined || member.node !== node) return;
    if (change.op === 'close') this.remove(member);
    else if (change.op === 'join') members.join(member, change.group);
    else members.leave(member, change.group);
  }

  private add(m: PresenceMember, node: string | null): void {
    const members = this.members(m.hub);
    const old = members.connections.get(m.id);
    if (old !== undefined) this.remove(old);
    const member: DirectoryMember = { hub: m.hub, id: m.id, userId: m.userId, roles: new Set(m.roles), groups: new Set(m.groups), node };
    members.add(member);
    if (node === null) return;
    let set = this.remote.get(node);
    if (set === undefined) this.remote.set(node, (set = new Set()));
    set.add(member);
    this.remoteCount++;
  }

  private remove(member: DirectoryMember): void {
    this.directory.get(member.hub)?.remove(member);
    if (member.node === null) return;
    const set = this.remote.get(member.node);
    if (set?.delete(member) === true) {
      this.remoteCount--;
      if (set.size === 0) this.remote.delete(member.node);
    }
  }

  /** A node's snapshot: its members become exactly these (served hubs only). */
  replaceNode(node: string, members: readonly PresenceMember[]): void {
    this.dropNode(node);
    for (const m of members) if (servesHub(this.hubs, m.hub)) this.add(m, node);
  }

  /** A node expired (or restarted): its members leave the directory. How many there were. */
  dropNode(node: string): number {
    const set = this.remote.get(node);
    if (set === undefined) return 0;
    const n = set.size;
    for (const member of [...set]) this.remove(member);
    return n;
  }

  /** This node's own connections, as its snapshot carries them. */
  *localMembers(): Iterable<PresenceMember> {
    for (const [hub, members] of this.directory) {
      for (const m of members.connections.values()) {
        if (m.node === null) yield { hub, id: m.id, userId: m.userId, roles: [...m.roles], groups: [...m.groups] };
      }
    }
  }

  /** The node holding a connection: null this node, undefined none known. */
  nodeOf(hub: string, connectionId: string): string | null | undefined {
    return this.directory.get(hub)?.connections.get(connectionId)?.node;
  }

  /** Other nodes' connections in the directory. */
  get remoteConnections(): number {
    return this.remoteCount;
  }

  /** The users connected to a hub on this node (not the cluster's). */
  localUsers(hub: string): string[] {
    const members = this.directory.get(hub);
    if (members === undefined) return [];
    return [...new Set([...members.connections.values()].flatMap((m) => (m.node !== null || m.userId === null ? [] : [m.userId])))];
  }

  query(hub: string, query: AzureQuery): AzureAnswer {
    const members = this.directory.get(hub);
    if (members === undefined) return query.kind === 'groupMembers' || query.kind === 'users' ? [] : false;
    switch (query.kind) {
      case 'connection':
        return members.connections.has(query.name);
      case 'group':
        return members.group(query.name).size > 0;
      case 'user':
        return members.user(query.name).size > 0;
      case 'users':
        return [...new Set([...members.connections.values()].flatMap((m) => (m.userId === null ? [] : [m.userId])))];
      case 'groupMembers':
        return [...members.group(query.name)].map((m) => ({ connectionId: m.id, userId: m.userId }));
      case 'permission': {
        const member = members.connections.get(query.connectionId);
        return member !== undefined && hasPermission(member.roles, query.permission, query.targetName);
      }
    }
  }
}
