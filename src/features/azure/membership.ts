/**
 * Who is connected to one hub and in which groups: the connections by id, and the members of each
 * group and each user. An edge keeps one per hub for its own sockets (and delivers from it); ingest
 * keeps one per hub for the whole node (and answers the REST existence checks from it). Both apply
 * the same operations, so both are this class.
 */
export interface Member {
  readonly id: string;
  readonly userId: string | null;
  readonly groups: Set<string>;
  readonly roles: Set<string>;
}

export type Target =
  | { readonly kind: 'all' }
  | { readonly kind: 'group'; readonly name: string }
  | { readonly kind: 'user'; readonly name: string }
  | { readonly kind: 'connection'; readonly name: string };

const NONE: ReadonlySet<never> = new Set();

function addTo<M>(index: Map<string, Set<M>>, key: string, member: M): void {
  let set = index.get(key);
  if (set === undefined) index.set(key, (set = new Set()));
  set.add(member);
}

function removeFrom<M>(index: Map<string, Set<M>>, key: string, member: M): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(member);
  if (set.size === 0) index.delete(key);
}

export class Membership<M extends Member> {
  readonly connections = new Map<string, M>();
  private readonly groups = new Map<string, Set<M>>();
  private readonly users = new Map<string, Set<M>>();

  /** `onGroup` hears every join and leave of a member already added (an edge moves its socket's topics). */
  constructor(private readonly onGroup?: (member: M, group: string, joined: boolean) => void) {}

  add(member: M): void {
    this.connections.set(member.id, member);
    if (member.userId !== null) addTo(this.users, member.userId, member);
    for (const group of member.groups) addTo(this.groups, group, member);
  }

  remove(member: M): void {
    if (this.connections.get(member.id) !== member) return;
    this.connections.delete(member.id);
    if (member.userId !== null) removeFrom(this.users, member.userId, member);
    for (const group of member.groups) removeFrom(this.groups, group, member);
  }

  /** False when it already was a member. */
  join(member: M, group: string): boolean {
    if (member.groups.has(group)) return false;
    member.groups.add(group);
    addTo(this.groups, group, member);
    this.onGroup?.(member, group, true);
    return true;
  }

  leave(member: M, group: string): void {
    if (!member.groups.delete(group)) return;
    removeFrom(this.groups, group, member);
    this.onGroup?.(member, group, false);
  }

  leaveAll(member: M): void {
    for (const group of [...member.groups]) this.leave(member, group);
  }

  group(name: string): ReadonlySet<M> {
    return this.groups.get(name) ?? NONE;
  }

  user(name: string): ReadonlySet<M> {
    return this.users.get(name) ?? NONE;
  }

  /** The members a target names (a live view: copy it before changing membership while iterating). */
  targets(target: Target): Iterable<M> {
    switch (target.kind) {
      case 'all':
        return this.connections.values();
      case 'group':
        return this.group(target.name);
      case 'user':
        return this.user(target.name);
      case 'connection': {
        const member = this.connections.get(target.name);
        return member === undefined ? [] : [member];
      }
    }
  }

  get size(): number {
    return this.connections.size;
  }
}
