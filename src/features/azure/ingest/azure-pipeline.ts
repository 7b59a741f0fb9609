/**
 * Azure Web PubSub traffic on the ingest thread. Every command (REST data plane, client group
 * messages, membership) crosses the bus on `<GATEWAY_AZURE_TOPIC>/<hub>`, so every node takes it;
 * here it is parsed and checked once, a send is rendered once (azure/frames.ts), and the result
 * goes to every edge, which applies it to the connections it holds.
 *
 * Ingest also keeps the node-wide directory of Azure connections (from the edges' presence reports
 * and the same membership commands) and answers the REST existence checks from it: which
 * connections, groups and users exist on this node, and with which permissions.
 */
import type { Logger } from 'pino';
import { applyMembershipCommand } from '../apply-command.js';
import { checkPayload, decodeAzureMessage, MAX_MESSAGE_BYTES, servesHub, type AzureCommand } from '../commands.js';
import { renderMessage, type RenderedMessage } from '../frames.js';
import { Membership, type Member } from '../membership.js';
import { compileFilter } from '../odata-filter.js';
import { hasPermission } from '../permissions.js';
import { GatewayError } from '../../../errors/gateway-error.js';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { AzureAnswer, AzurePresence, AzureQuery, AzureToEdge } from '../messages.js';

export class AzurePipeline {
  private readonly directory = new Map<string, Membership<Member>>();
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

  private members(hub: string): Membership<Member> {
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
    try {
      ({ command, payload } = decodeAzureMessage(bytes, this.maxJsonDepth));
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
    this.broadcast({ t: 'azure', hub, command, message });
  }

  private reject(why: string): void {
    this.stats.inc('azure_commands_rejected_total');
    this.log.warn({ why }, 'azure command rejected');
  }

  /** An edge's connection opened, closed, joined or left a group. */
  presence(hub: string, change: AzurePresence): void {
    const members = this.members(hub);
    if (change.op === 'open') {
      members.add({ id: change.id, userId: change.userId, roles: new Set(change.roles), groups: new Set(change.groups) });
      return;
    }
    const member = members.connections.get(change.id);
    if (member === undefined) return;
    if (change.op === 'close') members.remove(member);
    else if (change.op === 'join') members.join(member, change.group);
    else members.leave(member, change.group);
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
