/**
 * The frames that end an authenticated session, per endpoint family:
 *   share viewer, link expired   {"event":"expired","data":{"message":"Token expired"}}  then 1000 (docs/compat/gps-stream.md)
 *   share viewer, link revoked   {"event":"revoked","data":{"message":"Link revoked"}}   then 1008
 *   stream with a JWT, expired   {"event":"error","data":{"code":"GW_ERR_TOKEN_EXPIRED",…}} then 4001
 *   /ws/connect and channels, expired {"type":"token_expired","data":{…},"timestamp":…}      then 4001
 */
import type { WebSocket } from 'uWebSockets.js';
import { CLOSE } from '../errors/close-codes.js';
import type { RowWriter } from '../metrics/shared-stats.js';
import type { EdgeMetric } from '../metrics/metric-table.js';
import { CODECS, WIRE_FORMATS } from '../protocol/codec.js';
import { endSocket } from './close-socket.js';
import type { ExpiringSocket, ExpiryHandlers } from './session-expiry.js';

type Socket = WebSocket<unknown> & ExpiringSocket;

function send(ws: Socket, value: object): void {
  const codec = CODECS[WIRE_FORMATS[ws.format]];
  ws.send(codec.encode(value), codec.binary);
}

export function sessionEndings(stats: RowWriter<EdgeMetric>): ExpiryHandlers {
  return {
    expired(ws) {
      stats.inc('token_expiry_closes_total');
      if (ws.auth?.shareJti) {
        send(ws, { event: 'expired', data: { message: 'Token expired' } });
        endSocket(ws, CLOSE.SHARE_LINK_EXPIRED);
      } else if (ws.auth?.route === 'connect' || ws.auth?.route === 'channel') {
        send(ws, { type: 'token_expired', data: { message: 'Token expired; reconnect with a fresh token' }, timestamp: new Date().toISOString() });
        if (ws.auth.route === 'connect') stats.inc('user_messages_sent_total');
        endSocket(ws, CLOSE.TOKEN_EXPIRED);
      } else {
        send(ws, { event: 'error', data: { message: 'Token expired; reconnect with a fresh token', code: 'GW_ERR_TOKEN_EXPIRED' } });
        endSocket(ws, CLOSE.TOKEN_EXPIRED);
      }
    },
    revoked(ws) {
      stats.inc('share_revocations_total');
      send(ws, { event: 'revoked', data: { message: 'Link revoked' } });
      endSocket(ws, CLOSE.SHARE_LINK_REVOKED);
    },
  };
}
