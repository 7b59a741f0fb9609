/**
 * Entity events of one channel: `/api/v1/ws?channel=` (docs/compat/sensor-events.md's `entity_event` frames) or
 * `/ws/{channel}` (docs/compat/pet-care.md's `realtime_update` and `notification` frames). The client keeps
 * the last `offset` and `epoch` it saw and reconnects with `since`/`epoch`, so the gateway replays
 * exactly what was missed. When it cannot (the gap left the history, or another node or data
 * directory answered), `connected` says `recovered: false` with the reason: reload your state
 * over REST, then go on.
 */
import { ReconnectingClient, type BaseEvents, type ClientOptions } from './reconnecting-client.js';

export interface Connected {
  /** Undefined on a first connect; true when the missed events follow; false when they cannot. */
  readonly recovered?: boolean;
  readonly replayed?: number;
  /** Why not recovered: `history_exceeded` (also for a hole in the history after `since`) or `epoch_changed`. */
  readonly reason?: string;
  readonly epoch: string;
  /** The channel's last offset when connected. */
  readonly offset: number;
}

export interface ChannelEvents extends BaseEvents {
  connected: (info: Connected) => void;
  /** An event frame as the gateway sent it (`entity_event`, `realtime_update`, `notification`, …). */
  event: (frame: any) => void;
}

export interface ChannelOptions extends ClientOptions {
  readonly channel: string;
  /** `entity`: /api/v1/ws?channel= (default); `realtime`: /ws/{channel}. */
  readonly dialect?: 'entity' | 'realtime';
  /** /ws/{channel} only: also this user's notifications (ignored when a token names the user). */
  readonly userId?: string;
  /** Start from here (a position saved earlier) instead of from now. */
  readonly since?: { readonly offset: number; readonly epoch: string };
}

export class ChannelClient extends ReconnectingClient<ChannelEvents> {
  private lastOffset: number | null;
  private epoch: string | null;

  constructor(private readonly channelOptions: ChannelOptions) {
    super(channelOptions);
    this.lastOffset = channelOptions.since?.offset ?? null;
    this.epoch = channelOptions.since?.epoch ?? null;
  }

  /** Where this client is in the channel: save it to resume from there later (`since`). */
  get position(): { offset: number; epoch: string } | null {
    return this.lastOffset === null || this.epoch === null ? null : { offset: this.lastOffset, epoch: this.epoch };
  }

  protected path(token: string | null): string {
    const { channel, dialect, userId } = this.channelOptions;
    const query: string[] = [];
    if (dialect === 'realtime') {
      if (userId !== undefined) query.push(`user_id=${encodeURIComponent(userId)}`);
    } else {
      query.push(`channel=${encodeURIComponent(channel)}`);
    }
    if (this.lastOffset !== null && this.epoch !== null) query.push(`since=${this.lastOffset}`, `epoch=${encodeURIComponent(this.epoch)}`);
    if (token !== null) query.push(`token=${encodeURIComponent(token)}`);
    const base = dialect === 'realtime' ? `/ws/${encodeURIComponent(channel)}` : '/api/v1/ws';
    return query.length === 0 ? base : `${base}?${query.join('&')}`;
  }

  protected refreshFrame(token: string): object {
    return { type: 'refresh_token', token };
  }

  protected onFrame(frame: any): void {
    if (frame === null || typeof frame !== 'object') return;
    if (frame.type === 'connection_established') {
      // Resumed: the replay moves lastOffset along. Otherwise go on from the channel's head.
      if (frame.recovered !== true) {
        this.lastOffset = frame.offset;
        this.epoch = frame.epoch;
      }
      this.emit('connected', { recovered: frame.recovered, replayed: frame.replayed, reason: frame.reason, epoch: frame.epoch, offset: frame.offset });
      return;
    }
    if (typeof frame.offset === 'number') {
      if (frame.epoch === this.epoch && this.lastOffset !== null && frame.offset <= this.lastOffset) return; // seen already
      this.lastOffset = frame.offset;
      this.epoch = frame.epoch ?? this.epoch;
      this.emit('event', frame);
      return;
    }
    if (frame.type === 'notification') this.emit('event', frame); // a user's notification carries no offset
  }
}
