/**
 * How a command changes a hub's membership, and whom a send or close reaches: the same rules on
 * every edge (its own sockets) and in ingest's node-wide directory.
 */
import type { AzureCommand } from './commands.js';
import type { Member, Membership, Target } from './membership.js';
import { compileFilter, type Predicate } from './odata-filter.js';
import { roleOf } from './permissions.js';

/** Applies a membership or permission command (send and close are not membership changes: no-op). */
export function applyMembershipCommand<M extends Member>(members: Membership<M>, command: AzureCommand): void {
  switch (command.op) {
    case 'join':
      for (const m of [...members.targets(command.who)]) members.join(m, command.group);
      return;
    case 'leave':
      for (const m of [...members.targets(command.who)]) members.leave(m, command.group);
      return;
    case 'leaveAll':
      for (const m of [...members.targets(command.who)]) members.leaveAll(m);
      return;
    case 'joinFiltered':
    case 'leaveFiltered': {
      const selected = compileFilter(command.filter);
      for (const m of [...members.connections.values()]) {
        if (!selected(m)) continue;
        for (const group of command.groups) {
          if (command.op === 'joinFiltered') members.join(m, group);
          else members.leave(m, group);
        }
      }
      return;
    }
    case 'grant':
    case 'revoke': {
      const m = members.connections.get(command.connectionId);
      if (m === undefined) return;
      const role = roleOf(command.permission, command.targetName);
      if (command.op === 'grant') m.roles.add(role);
      else m.roles.delete(role);
      return;
    }
    case 'send':
    case 'close':
      return;
  }
}

export interface Selection {
  readonly to: Target;
  readonly excluded?: readonly string[];
  readonly filter?: string;
  /** A connection left out (the sender of a noEcho group message). */
  readonly skip?: string;
}

/**
 * Calls `each` for every member the selection reaches. The live sets are iterated (no copy per
 * message): `each` may remove the member it is given (a Set's iteration allows that), nothing else.
 */
export function forEachRecipient<M extends Member>(members: Membership<M>, selection: Selection, each: (member: M) => void): void {
  const predicate: Predicate | null = selection.filter === undefined || selection.filter === '' ? null : compileFilter(selection.filter);
  const excluded = selection.excluded !== undefined && selection.excluded.length > 0 ? new Set(selection.excluded) : null;
  for (const m of members.targets(selection.to)) {
    if (m.id === selection.skip) continue;
    if (excluded !== null && excluded.has(m.id)) continue;
    if (predicate !== null && !predicate(m)) continue;
    each(m);
  }
}
