/**
 * Azure Web PubSub roles (docs/compat/azure-webpubsub.md §3.1): `webpubsub.joinLeaveGroup` and
 * `webpubsub.sendToGroup` grant a permission on every group, `webpubsub.<permission>.<group>` on
 * one. REST grantPermission/revokePermission map to the same role strings.
 */
const PERMISSIONS = ['joinLeaveGroup', 'sendToGroup'] as const;
export type AzurePermission = (typeof PERMISSIONS)[number];

export const isPermission = (value: string): value is AzurePermission => (PERMISSIONS as readonly string[]).includes(value);

/** The role a permission is, on one group or (no group) on all of them. */
export function roleOf(permission: AzurePermission, group?: string): string {
  return group === undefined || group === '' ? `webpubsub.${permission}` : `webpubsub.${permission}.${group}`;
}

/** May a connection with these roles do `permission` on `group`? */
export function allows(roles: ReadonlySet<string>, permission: AzurePermission, group: string): boolean {
  return roles.has(`webpubsub.${permission}`) || roles.has(`webpubsub.${permission}.${group}`);
}

/** REST hasPermission: with a target, a role on that group or on all; without, the all-groups role. */
export function hasPermission(roles: ReadonlySet<string>, permission: AzurePermission, target: string | undefined): boolean {
  return target === undefined || target === '' ? roles.has(roleOf(permission)) : allows(roles, permission, target);
}
