/**
 * Live positions: `/api/v1/stream` (devices by id, or `*` for every device) and a share link's
 * `/api/v1/public/share-location/stream`. Each (re)connect asks for the current device set again,
 * so the gateway sends each device's last position first, then live ones.
 */
import { ReconnectingClient, type BaseEvents, type ClientOptions } from './reconnecting-client.js';

export interface Position {
  /** The device id (from `deviceIdField` of the payload); null when the payload has none. */
  readonly deviceId: string | null;
  /** The payload the device published. */
  readonly data: Record<string, any>;
  /** When the gateway accepted it (ISO 8601). */
  readonly timestamp: string;
}

export interface StreamEvents extends BaseEvents {
  position: (position: Position) => void;
  subscribed: (deviceIds: string[], expiresAt: string | null) => void;
  /** A share link ended: `expired` at its expiry, `revoked` by its owner. The client stops. */
  ended: (why: 'expired' | 'revoked', message: string) => void;
}

export interface StreamOptions extends ClientOptions {
  /** Devices to watch (`['*']`: every device). Not for share links. */
  readonly deviceIds?: readonly string[];
  /** A share link's token (from `share-location/init`): streams that one device. */
  readonly shareToken?: string;
  /** Payload field holding the device id (GATEWAY_DEVICE_ID_FIELD; default DEVICE_ID). */
  readonly deviceIdField?: string;
  /** With `deviceIds: ['*']`: positions arrive in one message per GATEWAY_STREAM_BATCH_MS (a dashboard's choice). */
  readonly batch?: boolean;
}

const ALL = '*';
/** Keep the upgrade request well under the gateway's header limit; the rest is subscribed after open. */
const MAX_QUERY_CHARS = 1500;

export class StreamClient extends ReconnectingClient<StreamEvents> {
  private readonly devices: Set<string>;
  private readonly idField: string;
  private inQuery = new Set<string>();

  constructor(options: StreamOptions) {
    super(options);
    if ((options.deviceIds === undefined) === (options.shareToken === undefined)) throw new Error('StreamClient needs deviceIds or shareToken (one of them)');
    this.devices = new Set(options.deviceIds ?? []);
    this.idField = options.deviceIdField ?? 'DEVICE_ID';
  }

  private get share(): string | undefined {
    return (this.options as StreamOptions).shareToken;
  }

  /** The devices watched now. */
  get deviceIds(): string[] {
    return [...this.devices];
  }

  subscribe(ids: readonly string[]): void {
    const fresh = ids.filter((id) => !this.devices.has(id));
    for (const id of fresh) this.devices.add(id);
    if (fresh.length > 0 && !this.send({ action: 'subscribe', device_ids: fresh })) this.wake();
  }

  unsubscribe(ids: readonly string[]): void {
    const gone = ids.filter((id) => this.devices.delete(id));
    if (gone.length > 0) this.send({ action: 'unsubscribe', device_ids: gone });
  }

  protected path(token: string | null): string {
    if (this.share !== undefined) return `/api/v1/public/share-location/stream?token=${encodeURIComponent(this.share)}`;
    const auth = token === null ? '' : `&token=${encodeURIComponent(token)}`;
    this.inQuery = new Set();
    if (this.devices.has(ALL)) {
      this.inQuery.add(ALL); // every device: the others add nothing
      return `/api/v1/stream?device_ids=*${(this.options as StreamOptions).batch === true ? '&batch=1' : ''}${auth}`;
    }
    let query = '';
    for (const id of this.devices) {
      const part = encodeURIComponent(id);
      if (query.length + part.length + 1 > MAX_QUERY_CHARS && query !== '') break;
      query += (query === '' ? '' : ',') + part;
      this.inQuery.add(id);
    }
    return `/api/v1/stream?device_ids=${query}${auth}`;
  }

  /** A stream with no device cannot be opened (4500): it waits for subscribe(). */
  protected override ready(): boolean {
    return this.share !== undefined || this.devices.size > 0;
  }

  protected override onOpen(): void {
    if (this.inQuery.has(ALL)) return;
    const rest = [...this.devices].filter((id) => !this.inQuery.has(id));
    for (let i = 0; i < rest.length; i += 200) this.send({ action: 'subscribe', device_ids: rest.slice(i, i + 200) });
  }

  protected refreshFrame(token: string): object | null {
    return this.share === undefined ? { action: 'refresh_token', token } : null;
  }

  private position(frame: any): void {
    const data = frame.data?.data ?? {};
    const id = data[this.idField];
    this.emit('position', { deviceId: id === undefined || id === null ? null : String(id), data, timestamp: frame.data?.timestamp });
  }

  protected onFrame(frame: any): void {
    switch (frame?.event) {
      case 'message':
        this.position(frame);
        return;
      case 'batch':
        if (Array.isArray(frame.data)) for (const message of frame.data) this.position(message);
        return;
      case 'subscribed':
        this.emit('subscribed', frame.data?.device_ids ?? [], frame.data?.expires_at ?? null);
        return;
      case 'expired':
      case 'revoked':
        this.finalReason = frame.event;
        this.emit('ended', frame.event, frame.data?.message ?? frame.event);
        return;
      default:
    }
  }
}
