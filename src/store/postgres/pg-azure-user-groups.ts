/**
 * Azure Web PubSub's user-group relations on PostgreSQL (store.ts AzureUserGroupRepository), shared
 * by every node: a node that starts after an addUserToGroup loads it. An add is one statement that
 * inserts only within the bounds; when it inserts nothing a second read says why (there already, or
 * which bound). Two adds racing on two connections both see the count before either: a bound may be
 * passed by the number of writers racing, never more.
 */
import type { AzureUserGroupRepository } from '../store.js';
import type { UserGroup } from '../../features/azure/user-groups.js';
import { userGroupsFull } from '../../features/azure/user-group-bounds.js';
import type { PgSession } from './pg-session.js';

const NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

export class PgAzureUserGroups implements AzureUserGroupRepository {
  constructor(private readonly db: PgSession) {}

  async add(hub: string, userId: string, group: string, bounds: { readonly perUser: number; readonly max: number }): Promise<boolean> {
    const inserted = await this.db.query(
      `INSERT INTO azure_user_groups (hub, user_id, group_name, added_at)
       SELECT $1, $2, $3, ${NOW_MS}
       WHERE (SELECT count(*) FROM azure_user_groups WHERE hub = $1 AND user_id = $2) < $4
         AND (SELECT count(*) FROM azure_user_groups) < $5
       ON CONFLICT (hub, user_id, group_name) DO NOTHING`,
      [hub, userId, group, bounds.perUser, bounds.max],
    );
    if ((inserted.rowCount ?? 0) > 0) return true;
    const { rows } = await this.db.query<{ present: boolean; in_user: string }>(
      `SELECT EXISTS (SELECT 1 FROM azure_user_groups WHERE hub = $1 AND user_id = $2 AND group_name = $3) AS present,
              (SELECT count(*) FROM azure_user_groups WHERE hub = $1 AND user_id = $2) AS in_user`,
      [hub, userId, group],
    );
    if (rows[0].present) return false;
    throw userGroupsFull(hub, userId, Number(rows[0].in_user) >= bounds.perUser ? { perUser: bounds.perUser } : { max: bounds.max });
  }

  async remove(hub: string, userId: string, group: string): Promise<boolean> {
    const result = await this.db.query('DELETE FROM azure_user_groups WHERE hub = $1 AND user_id = $2 AND group_name = $3', [hub, userId, group]);
    return (result.rowCount ?? 0) > 0;
  }

  async removeUser(hub: string, userId: string): Promise<number> {
    const result = await this.db.query('DELETE FROM azure_user_groups WHERE hub = $1 AND user_id = $2', [hub, userId]);
    return result.rowCount ?? 0;
  }

  async list(): Promise<UserGroup[]> {
    const { rows } = await this.db.query<{ hub: string; user_id: string; group_name: string }>(
      'SELECT hub, user_id, group_name FROM azure_user_groups ORDER BY hub COLLATE "C", user_id COLLATE "C", group_name COLLATE "C"',
    );
    return rows.map((r) => ({ hub: r.hub, userId: r.user_id, group: r.group_name }));
  }
}
