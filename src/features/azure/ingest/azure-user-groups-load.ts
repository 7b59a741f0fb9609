/**
 * The user-group relations (addUserToGroup, user-groups.ts) at ingest's start: read from the store
 * (shared by every node on PostgreSQL), so a node that starts after the call has them, and sent to
 * every edge in one `azure-user-groups` before ingest reports ready. The commands heard on the bus
 * while the store was read are applied over what it returned, in order, so a remove that came during
 * the read is not undone by a row the read still saw; the edges have had those commands too and the
 * init replaces what they made of them. From then on each edge keeps its copy from the commands;
 * the store is read again after each (re)subscription to the bus (what a cut made it miss).
 */
import type { Logger } from 'pino';
import type { AzureCommand } from '../commands.js';
import type { AzureToEdge } from '../messages.js';
import { UserGroups } from '../user-groups.js';
import type { AzureUserGroupRepository } from '../../../store/store.js';

export class UserGroupsLoad {
  /** Commands heard while the store is read; null when no read is under way. */
  private early: { readonly hub: string; readonly command: AzureCommand }[] | null = null;
  /** The newest read: an older one that ends later sends nothing. */
  private generation = 0;
  private sent!: () => void;
  /** Resolves once the edges have had the relations a first time (ingest's `ready` waits for it). */
  readonly ready = new Promise<void>((resolve) => (this.sent = resolve));

  constructor(
    private readonly store: AzureUserGroupRepository,
    private readonly broadcast: (message: AzureToEdge) => void,
    private readonly logger: Logger,
  ) {}

  /** Every command ingest passes to the edges, as it does. */
  heard(message: AzureToEdge): void {
    if (this.early !== null && message.t === 'azure' && message.command.op !== 'send') this.early.push({ hub: message.hub, command: message.command });
  }

  /**
   * Reads the store and sends the edges what it holds: at start, and again after each (re)subscription
   * to the bus, so a change made while this node was not subscribed (before its first SUBACK, or
   * during a cut) is learned from the store.
   */
  async load(): Promise<void> {
    const mine = ++this.generation;
    this.early ??= [];
    const rows = await this.store.list();
    if (mine !== this.generation) return;
    const relations = new UserGroups();
    relations.replace(rows);
    for (const { hub, command } of this.early) relations.apply(hub, command);
    this.early = null;
    this.broadcast({ t: 'azure-user-groups', entries: [...relations.entries()] });
    this.logger.debug({ relations: relations.size }, 'azure user-group relations loaded');
    this.sent();
  }
}
