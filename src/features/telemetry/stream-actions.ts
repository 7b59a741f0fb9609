/**
 * The frames a client may send on /api/v1/stream (full duplex):
 *   {"action":"subscribe","device_ids":["A","B"]}
 *   {"action":"unsubscribe","device_ids":["A"]}
 *   {"action":"ping"}
 *   {"action":"refresh_token","token":"<fresh JWT>"}   (authenticated connections)
 * Anything else is a bad frame: the client gets an `error` event and the connection stays. No
 * message quotes the frame (bad-frame errors are logged; a frame's content never is).
 */
import { GatewayError } from '../../errors/gateway-error.js';
import { validateDeviceIds } from './device-ids.js';

export type StreamAction =
  | { readonly action: 'subscribe'; readonly deviceIds: string[] }
  | { readonly action: 'unsubscribe'; readonly deviceIds: string[] }
  | { readonly action: 'ping' }
  | { readonly action: 'refresh_token'; readonly token: string };

const STREAM_ACTIONS = ['subscribe', 'unsubscribe', 'ping', 'refresh_token'] as const;

export function parseStreamAction(value: unknown, maxDevices: number): StreamAction {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new GatewayError('GW_ERR_FRAME_INVALID', 'Frame must be an object such as {"action":"subscribe","device_ids":["A"]}');
  }
  const frame = value as Record<string, unknown>;
  const action = frame.action;
  if (typeof action !== 'string') throw new GatewayError('GW_ERR_FRAME_INVALID', 'Frame has no "action" string');
  switch (action) {
    case 'ping':
      return { action };
    case 'refresh_token': {
      const token = frame.token;
      if (typeof token !== 'string' || token === '') throw new GatewayError('GW_ERR_FRAME_INVALID', '"refresh_token" needs "token": a string');
      return { action, token };
    }
    case 'subscribe':
    case 'unsubscribe': {
      const ids = frame.device_ids;
      if (!Array.isArray(ids)) throw new GatewayError('GW_ERR_FRAME_INVALID', `"${action}" needs "device_ids": an array of strings`);
      return { action, deviceIds: validateDeviceIds(ids, maxDevices, false) };
    }
    default:
      throw new GatewayError('GW_ERR_UNKNOWN_ACTION', `Unknown action (${action.length} characters); use one of ${STREAM_ACTIONS.join(', ')}`);
  }
}
