/** The refusal of an addUserToGroup past its bounds (GATEWAY_AZURE_USER_GROUPS_PER_USER, _MAX), the same from both drivers. */
import { GatewayError } from '../../errors/gateway-error.js';

export function userGroupsFull(hub: string, userId: string, over: { readonly perUser: number } | { readonly max: number }): GatewayError {
  const user = JSON.stringify(userId.slice(0, 64));
  return new GatewayError(
    'GW_ERR_AZURE_USER_GROUPS_FULL',
    'perUser' in over
      ? `User ${user} is in ${over.perUser} groups of hub ${hub} already (GATEWAY_AZURE_USER_GROUPS_PER_USER); remove one first`
      : `The store keeps ${over.max} user-group relations already (GATEWAY_AZURE_USER_GROUPS_MAX); remove some first`,
  );
}
