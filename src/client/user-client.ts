/**
 * A signed-in user's events: `/ws/connect?token=` (docs/compat/user-hub.md): the events of the user, of its
 * roles and of everyone, and the channels its roles may see. Answers the server's heartbeat and
 * refreshes the token before it expires (the server ends an unrefreshed session with 4001, after
 * which the client reconnects with a fresh token from the provider).
 */
import { ReconnectingClient, type BaseEvents, type ClientOptions } from './reconnecting-client.js';

export interface UserEvents extends BaseEvents {
  connected: (info: { readonly user_id: string; readonly roles: string[]; readonly expires_at: string }) => void;
  /** Any other frame with a `type` (task_event, notification, system_event, …). */
  event: (frame: any) => void;
}

const CONTROL = new Set(['connection_established', 'ping', 'pong', 'token_refreshed', 'token_expired', 'error']);

export class UserClient extends ReconnectingClient<UserEvents> {
  constructor(options: ClientOptions) {
    if (options.token === undefined) throw new Error('UserClient needs a token (a JWT or a function giving one)');
    super(options);
  }

  protected path(token: string | null): string {
    return `/ws/connect?token=${encodeURIComponent(token ?? '')}`;
  }

  protected refreshFrame(token: string): object {
    return { type: 'refresh_token', token };
  }

  protected onFrame(frame: any): void {
    if (frame === null || typeof frame !== 'object') return;
    if (frame.type === 'ping') this.send({ type: 'pong' });
    else if (frame.type === 'connection_established') this.emit('connected', frame.data);
    else if (!CONTROL.has(frame.type)) this.emit('event', frame);
  }
}
