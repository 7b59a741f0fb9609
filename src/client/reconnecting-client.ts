/**
 * The part every endpoint family shares: one WebSocket at a time to the gateway, reconnected with
 * capped exponential backoff and full jitter; a fresh token from the caller's provider at each
 * connect and shortly before the current one expires; no reconnect on the codes that say "do not"
 * (the reconnect flag of errors/close-codes.ts: 1000, 1008, 1009, 4500-4999); connection
 * state as events. Endpoint families (stream-client.ts, channel-client.ts, user-client.ts) say
 * which URL to open, what to do with a frame, and how to send a refreshed token.
 */
import { CLOSE, shouldReconnect } from '../errors/close-codes.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { decoderFor, type Decoder, type Format } from './codec.js';
import { Emitter } from './emitter.js';
import { tokenExpiresAt } from './token-expiry.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StateChange {
  readonly state: ConnectionState;
  /** reconnecting: the attempt about to be made (1-based) and the delay before it. */
  readonly attempt?: number;
  readonly delayMs?: number;
  /** The close that caused this change, when there was one. */
  readonly code?: number;
  readonly reason?: string;
}

/** The subset of the WebSocket API the client uses (the browser's, or `ws` in Node). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type TokenSource = string | (() => string | Promise<string>);

export interface ClientOptions {
  /** The gateway's base URL: `ws://host:8080` (http/https are turned into ws/wss). */
  readonly url: string;
  /** Wire format (default json). msgpack loads `msgpackr`. */
  readonly format?: Format;
  /** A JWT, or a function giving a fresh one (called at every connect and before expiry). */
  readonly token?: TokenSource;
  /** Refresh the token this long before it expires (default 60 s). */
  readonly refreshMarginMs?: number;
  /** Reconnect delays; false: never reconnect. */
  readonly reconnect?: BackoffOptions | false;
  /** The WebSocket class; default `globalThis.WebSocket` (Node 20 has none: pass `ws`'s). */
  readonly WebSocket?: WebSocketConstructor;
}

export interface BaseEvents {
  state: (change: StateChange) => void;
  /** Every decoded frame, before the family's own events. */
  frame: (frame: any) => void;
  /** An `error` frame from the gateway: a refused action, a bad frame, a forbidden subscription. */
  serverError: (error: { readonly code: string; readonly message: string }) => void;
}

const OPEN = 1;
/** setTimeout's longest delay. */
const MAX_TIMER_MS = 2_147_483_647;

export abstract class ReconnectingClient<Events extends BaseEvents> extends Emitter<Events> {
  private ws: WebSocketLike | null = null;
  private decoder: Decoder | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private current: ConnectionState = 'closed';
  /** Set by a family when the server said this connection is over for good (expired, revoked). */
  protected finalReason: string | null = null;
  private firstOpen: { resolve: () => void; reject: (err: Error) => void } | null = null;
  /** Bumped by start() and stop(): a connect or refresh from before it is stale and does nothing. */
  private generation = 0;
  /** Waiting for the family to have something to ask for (see ready()). */
  private parked = false;
  protected readonly format: Format;
  private readonly base: string;
  private readonly Socket: WebSocketConstructor;

  constructor(protected readonly options: ClientOptions) {
    super();
    const Socket = options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (Socket === undefined) throw new Error("No WebSocket class here: pass options.WebSocket (in Node 20, the `ws` package's)");
    this.Socket = Socket;
    this.format = options.format ?? 'json';
    this.base = options.url.replace(/^http/, 'ws').replace(/\/+$/, '');
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Opens the connection; resolves at the first open, rejects if it closes for good before. */
  start(): Promise<void> {
    this.stopped = false;
    this.finalReason = null;
    this.parked = false;
    this.generation++;
    return new Promise<void>((resolve, reject) => {
      this.firstOpen = { resolve, reject };
      void this.connect();
    });
  }

  /** A family that had nothing to ask for (ready() was false) has something now: connect. */
  protected wake(): void {
    if (!this.parked || this.stopped) return;
    this.parked = false;
    void this.connect();
  }

  /** Closes for good (no reconnect). */
  stop(): void {
    this.stopped = true;
    this.parked = false;
    this.generation++;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws !== null) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.close(CLOSE.CLIENT_STOPPED.code, CLOSE.CLIENT_STOPPED.reason);
    }
    this.setState({ state: 'closed', code: CLOSE.CLIENT_STOPPED.code, reason: CLOSE.CLIENT_STOPPED.reason });
    this.firstOpen?.reject(new Error('stopped'));
    this.firstOpen = null;
  }

  /** The path and query to open, e.g. `/api/v1/stream?device_ids=A` (token: the current one, if any). */
  protected abstract path(token: string | null): string;
  /** One decoded frame. */
  protected abstract onFrame(frame: any): void;
  /** The frame that hands the server a refreshed token; null when this family cannot refresh. */
  protected abstract refreshFrame(token: string): object | null;
  /** The socket opened (resubscribe here). */
  protected onOpen(): void {}
  /** False when there is nothing to connect for (a stream with no devices): wait for wake(). */
  protected ready(): boolean {
    return true;
  }

  protected send(value: object): boolean {
    if (this.ws === null || this.ws.readyState !== OPEN) return false;
    this.ws.send(JSON.stringify(value));
    return true;
  }

  /** emit() for the events every family has (TypeScript cannot see them in the generic Events). */
  private fire<K extends keyof BaseEvents>(event: K, ...args: Parameters<BaseEvents[K]>): void {
    (this.emit as (e: keyof BaseEvents, ...a: unknown[]) => void).call(this, event, ...args);
  }

  private setState(change: StateChange): void {
    this.current = change.state;
    this.fire('state', change);
  }

  private async token(): Promise<string | null> {
    const source = this.options.token;
    if (source === undefined) return null;
    return typeof source === 'string' ? source : await source();
  }

  private async connect(): Promise<void> {
    this.timer = null;
    const generation = this.generation;
    if (!this.ready()) {
      this.parked = true;
      this.setState({ state: 'closed', reason: 'nothing to watch' });
      return;
    }
    if (this.attempt === 0) this.setState({ state: 'connecting' }); // a reconnect announced itself with its delay
    let ws: WebSocketLike;
    let token: string | null;
    try {
      this.decoder ??= await decoderFor(this.format);
      token = await this.token();
      if (this.stopped || generation !== this.generation) return;
      ws = new this.Socket(this.base + this.path(token), [this.format]);
    } catch (err) {
      this.closed(0, (err as Error).message);
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onerror = () => {}; // a close always follows
    ws.onopen = () => {
      this.attempt = 0;
      this.setState({ state: 'open' });
      this.scheduleRefresh(token);
      this.onOpen();
      this.firstOpen?.resolve();
      this.firstOpen = null;
    };
    ws.onmessage = (ev) => {
      let frame: any;
      try {
        frame = this.decoder!.decode(ev.data as string | ArrayBuffer);
      } catch {
        return; // not ours to judge: the gateway only sends what it documents
      }
      this.fire('frame', frame);
      if (frame !== null && typeof frame === 'object' && (frame.event === 'error' || frame.type === 'error') && frame.data !== undefined) {
        this.fire('serverError', frame.data);
      }
      this.onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws === ws) this.ws = null;
      this.closed(ev.code, ev.reason);
    };
  }

  private closed(code: number, reason: string): void {
    this.clearTimers();
    const backoff = this.options.reconnect;
    const final = this.stopped || this.finalReason !== null || backoff === false || !shouldReconnect(code);
    const attempt = this.attempt + 1;
    if (final || attempt > (backoff?.maxAttempts ?? Infinity)) {
      this.setState({ state: 'closed', code, reason: this.finalReason ?? reason });
      this.firstOpen?.reject(new Error(`connection closed: ${code} ${this.finalReason ?? reason}`));
      this.firstOpen = null;
      return;
    }
    const delayMs = backoffDelay(this.attempt, backoff);
    this.attempt = attempt;
    this.setState({ state: 'reconnecting', attempt, delayMs, code, reason });
    this.timer = setTimeout(() => void this.connect(), delayMs);
  }

  private scheduleRefresh(token: string | null): void {
    if (token === null || typeof this.options.token !== 'function' || this.refreshFrame('') === null) return;
    const expiresAt = tokenExpiresAt(token);
    if (expiresAt === null) return;
    const dueAt = expiresAt - (this.options.refreshMarginMs ?? 60_000);
    const ws = this.ws;
    const wait = () => {
      // setTimeout fires at once past 2^31-1 ms (24.8 days): a long-lived token waits in steps.
      this.refreshTimer = setTimeout(() => void refresh(), Math.min(MAX_TIMER_MS, Math.max(1_000, dueAt - Date.now())));
    };
    const refresh = async () => {
      this.refreshTimer = null;
      if (dueAt - Date.now() > 1_000) return wait();
      try {
        const fresh = await this.token();
        if (this.ws !== ws) return; // reconnected meanwhile: the new socket has its own refresh
        if (fresh !== null && this.send(this.refreshFrame(fresh)!)) this.scheduleRefresh(fresh);
      } catch {
        // the provider failed: the server will end the session at expiry (4001) and we reconnect
      }
    };
    wait();
  }

  private clearTimers(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.timer = null;
    this.refreshTimer = null;
  }
}
