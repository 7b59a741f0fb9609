/**
 * Authentication of the bus's control messages (channel events, user/role events, Azure commands,
 * revocations, test hooks): a broker that lets anyone publish still cannot inject them. Every node
 * and every backend that publishes one puts a tag in front of the payload; ingest checks the tag
 * before anything else looks at the payload and drops what does not pass. Telemetry is never
 * tagged nor checked (devices cannot sign); its topics do not reach this file.
 *
 * Wire format (version 1), the payload as published:
 *
 *   GWMAC1 <ts> <mac>\n<body>
 *
 *   ts    Unix time in seconds, decimal (1 to 12 digits), when it was tagged
 *   mac   HMAC-SHA256, 64 hex digits, keyed with the UTF-8 bytes of GATEWAY_CLUSTER_KEY, over
 *         "GWMAC1" NUL <topic> NUL <ts> NUL <body>   (NUL = one 0x00 byte; topics cannot hold one)
 *   body  the message as it was before (JSON, or an Azure command line and its payload), untouched
 *
 * The topic is in the MAC, so a message cannot be moved to another topic (another user, channel or
 * hub); `ts` must be within ±CLOCK_WINDOW_S of the receiver's clock, so a captured message can be
 * replayed only for those minutes, and only as it was: same topic, same bytes (docs/guide/security.md, "What a replay can do").
 *
 * Why a prefix in the payload and not MQTT 5 user properties: the gateway, aedes and most bridges
 * speak MQTT 3.1.1, where there are no properties, and a Mosquitto bridge or a 3.1.1 hop drops
 * them; the payload is the one thing every broker and bridge carries unchanged. The cost is one
 * header line that backends reading these topics must skip (they are control topics: only the
 * gateway reads them, except the Azure client events, which are not tagged).
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

const TAG_MAGIC = 'GWMAC1';
/** How far a tag's time may be from the receiver's clock, either way. */
export const CLOCK_WINDOW_S = 300;
/** Longest header: magic, space, 12 digits, space, 64 hex digits, newline. */
export const TAG_MAX_BYTES = TAG_MAGIC.length + 1 + 12 + 1 + 64 + 1;

const MAGIC_BYTES = Buffer.from(`${TAG_MAGIC} `, 'latin1');
const DOMAIN = Buffer.from(`${TAG_MAGIC}\0`, 'latin1');
const NUL = Buffer.from([0]);
const SPACE = 0x20;
const NEWLINE = 0x0a;
const ZERO = 0x30;
const NINE = 0x39;

type Refusal = 'unsigned' | 'malformed tag' | 'outside the clock window' | 'wrong tag' | 'too large';

export class ControlAuth {
  private readonly key: KeyObject;
  /** A second key whose tags are accepted too, never used to tag (rotating the key). */
  private readonly accepted: KeyObject | null;
  /** Why the last `open` returned null. */
  refusal: Refusal = 'unsigned';

  constructor(
    clusterKey: string,
    private readonly maxBytes: number,
    private readonly now: () => number = Date.now,
    acceptedKey?: string,
  ) {
    this.key = createSecretKey(Buffer.from(clusterKey, 'utf8'));
    this.accepted = acceptedKey === undefined ? null : createSecretKey(Buffer.from(acceptedKey, 'utf8'));
  }

  private mac(topic: string, ts: string, body: string | Uint8Array, key = this.key): Buffer {
    const h = createHmac('sha256', key).update(DOMAIN).update(topic, 'utf8').update(NUL).update(ts, 'latin1').update(NUL);
    if (typeof body === 'string') h.update(body, 'utf8');
    else h.update(body);
    return h.digest();
  }

  /** The payload to publish on `topic`: the tag, then the body (a string stays a string). */
  sign(topic: string, body: string): string;
  sign(topic: string, body: Uint8Array): Buffer;
  sign(topic: string, body: string | Uint8Array): string | Buffer;
  sign(topic: string, body: string | Uint8Array): string | Buffer {
    const ts = String(Math.floor(this.now() / 1000));
    const header = `${TAG_MAGIC} ${ts} ${this.mac(topic, ts, body).toString('hex')}\n`;
    return typeof body === 'string' ? header + body : Buffer.concat([Buffer.from(header, 'latin1'), body]);
  }

  /**
   * The body of a message that came on `topic`, or null when it is not authenticated (why: `refusal`).
   * The body is a view of `payload`, not a copy. Bounded first, then the header is read by bytes,
   * then one HMAC; nothing parses the body before it passed.
   */
  open(topic: string, payload: Buffer): Buffer | null {
    if (payload.byteLength > this.maxBytes) return this.refuse('too large');
    if (payload.byteLength < MAGIC_BYTES.length || payload.compare(MAGIC_BYTES, 0, MAGIC_BYTES.length, 0, MAGIC_BYTES.length) !== 0)
      return this.refuse('unsigned');
    let i = MAGIC_BYTES.length;
    const tsStart = i;
    while (i < payload.byteLength && i - tsStart <= 12 && payload[i] >= ZERO && payload[i] <= NINE) i++;
    const tsEnd = i;
    if (tsEnd === tsStart || tsEnd - tsStart > 12 || payload[i] !== SPACE) return this.refuse('malformed tag');
    const macStart = i + 1;
    const macEnd = macStart + 64;
    if (payload.byteLength <= macEnd || payload[macEnd] !== NEWLINE) return this.refuse('malformed tag');
    const given = Buffer.from(payload.toString('latin1', macStart, macEnd), 'hex');
    if (given.byteLength !== 32) return this.refuse('malformed tag');
    const ts = payload.toString('latin1', tsStart, tsEnd);
    if (Math.abs(Number(ts) - this.now() / 1000) > CLOCK_WINDOW_S) return this.refuse('outside the clock window');
    const body = payload.subarray(macEnd + 1);
    if (!timingSafeEqual(given, this.mac(topic, ts, body)) && (this.accepted === null || !timingSafeEqual(given, this.mac(topic, ts, body, this.accepted)))) {
      return this.refuse('wrong tag');
    }
    return body;
  }

  private refuse(why: Refusal): null {
    this.refusal = why;
    return null;
  }
}
