/**
 * The gateway's client, for browsers and Node (`uws-gateway/client`):
 *
 *   const positions = new StreamClient({ url: 'ws://localhost:8080', deviceIds: ['*'], format: 'msgpack' });
 *   positions.on('position', (p) => map.move(p.deviceId, p.data.LAT, p.data.LON));
 *   await positions.start();
 *
 * Every client reconnects with capped exponential backoff and full jitter, takes a fresh token from
 * its provider at each connect and before expiry, and reports its state (`state` events).
 */
export { StreamClient, type Position, type StreamEvents, type StreamOptions } from './stream-client.js';
export { ChannelClient, type ChannelEvents, type ChannelOptions, type Connected } from './channel-client.js';
export { UserClient, type UserEvents } from './user-client.js';
export type { ClientOptions, ConnectionState, StateChange, TokenSource, WebSocketConstructor, WebSocketLike } from './reconnecting-client.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export type { Format } from './codec.js';
