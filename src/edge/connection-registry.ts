/**
 * Every open WebSocket of one kind on this edge: shutdown closes each with 1001, and the
 * backpressure scans walk them. The telemetry keep-alive is a separate publisher (keepalive.ts).
 */
import type { WebSocket } from 'uWebSockets.js';
import { CLOSE } from '../errors/close-codes.js';
import { endSocket } from './close-socket.js';

type ClosableSocket = WebSocket<unknown> & { closed: boolean };

export class ConnectionRegistry<S extends ClosableSocket = ClosableSocket> {
  private readonly open = new Set<S>();
  /** Read on the upgrade path: once true, new connections are refused. */
  closing = false;

  add(ws: S): void {
    this.open.add(ws);
  }

  /** False when the socket was not registered. */
  delete(ws: S): boolean {
    return this.open.delete(ws);
  }

  get size(): number {
    return this.open.size;
  }

  /** Every open socket (the slow-consumer scan walks these; one set serves both). */
  sockets(): IterableIterator<S> {
    return this.open.values();
  }

  /** Ends every socket with 1001 (CLOSE.GOING_AWAY). */
  closeAll(reason: string = CLOSE.GOING_AWAY.reason): void {
    this.closing = true;
    for (const ws of [...this.open]) {
      if (!ws.closed) endSocket(ws, CLOSE.GOING_AWAY, reason); // not corked: see close-socket.ts
    }
  }
}
