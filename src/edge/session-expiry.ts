/**
 * Ends authenticated sessions on time: a JWT session when its token expires (unless refreshed),
 * a share-location viewer when its link expires (docs/compat/gps-stream.md: `{"event":"expired"}` then 1000)
 * or is revoked. One sweep for all sockets of the edge.
 */
import type { WebSocket } from 'uWebSockets.js';
import type { Principal } from '../auth/principal.js';
import type { FormatIndex } from '../protocol/codec.js';

/** What an authenticated connection carries (one field on the socket: null when unauthenticated). */
export interface SessionAuth {
  /** Which endpoint family, for the shape of the ending frame. */
  readonly route: 'stream' | 'connect' | 'channel';
  /** The JWT's principal; null for share-location viewers. */
  principal: Principal | null;
  /** ms since the epoch */
  expiresAt: number;
  /** The share link's jti, for revocation; null for JWT sessions. */
  readonly shareJti: string | null;
}

export interface ExpiringSocket {
  closed: boolean;
  /** Wire format (0 json, 1 msgpack), for the ending frame. */
  readonly format: FormatIndex;
  auth: SessionAuth | null;
}

type Socket = WebSocket<unknown> & ExpiringSocket;

export interface ExpiryHandlers {
  expired(ws: Socket): void;
  revoked(ws: Socket): void;
}

export class SessionExpiry {
  private readonly sockets = new Set<Socket>();
  private readonly byJti = new Map<string, Set<Socket>>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly handlers: ExpiryHandlers,
    sweepMs = 250,
  ) {
    this.timer = setInterval(() => this.sweep(), sweepMs);
    this.timer.unref();
  }

  track(ws: Socket): void {
    const jti = ws.auth?.shareJti;
    if (!ws.auth) return;
    this.sockets.add(ws);
    if (jti) {
      let set = this.byJti.get(jti);
      if (set === undefined) this.byJti.set(jti, (set = new Set()));
      set.add(ws);
    }
  }

  untrack(ws: Socket): void {
    this.sockets.delete(ws);
    const jti = ws.auth?.shareJti;
    if (!jti) return;
    const set = this.byJti.get(jti);
    set?.delete(ws);
    if (set?.size === 0) this.byJti.delete(jti);
  }

  /** Ends every live viewer of a revoked link; returns how many. */
  revoke(jti: string): number {
    const set = this.byJti.get(jti);
    if (set === undefined) return 0;
    let ended = 0;
    for (const ws of [...set]) {
      if (ws.closed) continue;
      this.untrack(ws);
      this.handlers.revoked(ws); // not corked: see close-socket.ts
      ended++;
    }
    return ended;
  }

  private sweep(): void {
    const now = Date.now();
    for (const ws of this.sockets) {
      if (ws.closed) {
        this.untrack(ws);
      } else if (ws.auth !== null && ws.auth.expiresAt <= now) {
        this.untrack(ws);
        this.handlers.expired(ws); // not corked: see close-socket.ts
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
