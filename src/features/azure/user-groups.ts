/**
 * The user-group relation of Azure Web PubSub's `addUserToGroup`: per hub, the groups each user was
 * added to. The service keeps it for the user, not for the connections it had then: a connection
 * the user opens later, on any node, joins those groups as it opens (azure-sessions.ts `open`,
 * before its `connected` frame). `removeUserFromGroup` and `removeUserFromAllGroups` end it. It
 * lives until removed (no expiry, as the service's); its size is bounded where it is written (the
 * store, GATEWAY_AZURE_USER_GROUPS_PER_USER and _MAX).
 *
 * Each edge thread and ingest keep one, changed by the same membership commands from the bus (a
 * `join`, `leave` or `leaveAll` whose target is a user) in the order the commands come, and filled
 * at start from the store (ingest loads it and sends it to the edges, `azure-user-groups`).
 * Group existence is not answered from here: a group exists while it has a connection.
 */
import type { AzureCommand } from './commands.js';

/** One relation, as the store keeps it and the start sends it to the edges. */
export interface UserGroup {
  readonly hub: string;
  readonly userId: string;
  readonly group: string;
}

const NONE: ReadonlySet<never> = new Set();

export class UserGroups {
  /** hub → user → groups */
  private readonly hubs = new Map<string, Map<string, Set<string>>>();
  private count = 0;

  /** Applies a membership command that names a user (any other changes nothing). */
  apply(hub: string, command: AzureCommand): void {
    if ((command.op !== 'join' && command.op !== 'leave' && command.op !== 'leaveAll') || command.who.kind !== 'user') return;
    const user = command.who.name;
    if (command.op === 'join') this.add({ hub, userId: user, group: command.group });
    else if (command.op === 'leave') this.remove(hub, user, command.group);
    else this.removeUser(hub, user);
  }

  add(entry: UserGroup): void {
    let users = this.hubs.get(entry.hub);
    if (users === undefined) this.hubs.set(entry.hub, (users = new Map<string, Set<string>>()));
    let groups = users.get(entry.userId);
    if (groups === undefined) users.set(entry.userId, (groups = new Set()));
    if (groups.has(entry.group)) return;
    groups.add(entry.group);
    this.count++;
  }

  remove(hub: string, userId: string, group: string): void {
    const users = this.hubs.get(hub);
    const groups = users?.get(userId);
    if (groups === undefined || !groups.delete(group)) return;
    this.count--;
    if (groups.size === 0) users!.delete(userId);
    if (users!.size === 0) this.hubs.delete(hub);
  }

  removeUser(hub: string, userId: string): void {
    const users = this.hubs.get(hub);
    const groups = users?.get(userId);
    if (groups === undefined) return;
    this.count -= groups.size;
    users!.delete(userId);
    if (users!.size === 0) this.hubs.delete(hub);
  }

  /** The whole relation becomes these entries (the start's load). */
  replace(entries: Iterable<UserGroup>): void {
    this.hubs.clear();
    this.count = 0;
    for (const entry of entries) this.add(entry);
  }

  /** The groups a user of a hub was added to (a live view: do not change while iterating). */
  groups(hub: string, userId: string): ReadonlySet<string> {
    return this.hubs.get(hub)?.get(userId) ?? NONE;
  }

  *entries(): Iterable<UserGroup> {
    for (const [hub, users] of this.hubs) {
      for (const [userId, groups] of users) for (const group of groups) yield { hub, userId, group };
    }
  }

  get size(): number {
    return this.count;
  }
}
