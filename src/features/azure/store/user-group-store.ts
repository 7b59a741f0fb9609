/**
 * Azure Web PubSub's user-group relations in gateway.sqlite (store/database.ts `azure_user_groups`):
 * the SQLite driver's AzureUserGroupRepository (src/store/store.ts). Written by the store pool as
 * the REST calls come (addUserToGroup, removeUserFromGroup, removeUserFromAllGroups), read by ingest
 * at start. An add checks its bounds and writes in one transaction.
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../../../store/database.js';
import type { UserGroup } from '../user-groups.js';
import { userGroupsFull } from '../user-group-bounds.js';

export class UserGroupStore {
  private readonly exists: Statement<[string, string, string]>;
  private readonly countUser: Statement<[string, string], { n: number }>;
  private readonly countAll: Statement<[], { n: number }>;
  private readonly insert: Statement<[string, string, string, number]>;
  private readonly deleteOne: Statement<[string, string, string]>;
  private readonly deleteUser: Statement<[string, string]>;
  private readonly selectAll: Statement<[], UserGroup>;
  private readonly addTx: (hub: string, userId: string, group: string, perUser: number, max: number) => boolean;

  constructor(db: Db) {
    this.exists = db.prepare('SELECT 1 FROM azure_user_groups WHERE hub = ? AND user_id = ? AND group_name = ?');
    this.countUser = db.prepare('SELECT count(*) AS n FROM azure_user_groups WHERE hub = ? AND user_id = ?');
    this.countAll = db.prepare('SELECT count(*) AS n FROM azure_user_groups');
    this.insert = db.prepare('INSERT INTO azure_user_groups (hub, user_id, group_name, added_at) VALUES (?, ?, ?, ?)');
    this.deleteOne = db.prepare('DELETE FROM azure_user_groups WHERE hub = ? AND user_id = ? AND group_name = ?');
    this.deleteUser = db.prepare('DELETE FROM azure_user_groups WHERE hub = ? AND user_id = ?');
    this.selectAll = db.prepare('SELECT hub, user_id AS userId, group_name AS "group" FROM azure_user_groups ORDER BY hub, user_id, group_name');
    const tx = db.transaction((hub: string, userId: string, group: string, perUser: number, max: number): boolean => {
      if (this.exists.get(hub, userId, group) !== undefined) return false;
      const inUser = this.countUser.get(hub, userId)!.n;
      const all = this.countAll.get()!.n;
      if (inUser >= perUser || all >= max) throw userGroupsFull(hub, userId, inUser >= perUser ? { perUser } : { max });
      this.insert.run(hub, userId, group, Date.now());
      return true;
    });
    this.addTx = (...args) => tx.immediate(...args);
  }

  add(hub: string, userId: string, group: string, bounds: { readonly perUser: number; readonly max: number }): boolean {
    return this.addTx(hub, userId, group, bounds.perUser, bounds.max);
  }

  remove(hub: string, userId: string, group: string): boolean {
    return this.deleteOne.run(hub, userId, group).changes > 0;
  }

  removeUser(hub: string, userId: string): number {
    return this.deleteUser.run(hub, userId).changes;
  }

  list(): UserGroup[] {
    return this.selectAll.all();
  }
}
