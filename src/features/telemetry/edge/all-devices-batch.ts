/**
 * Batched frames for `device_ids=*&batch=1` (a dashboard watching thousands of devices): the frames
 * of every device collected for GATEWAY_STREAM_BATCH_MS, then sent as one message to every batched
 * subscriber of the format. A browser pays a task per WebSocket message; thousands of positions a
 * second as one message every 100 ms is what keeps a dashboard smooth. The batch is the frames' own
 * bytes, concatenated once per format (not per socket):
 *
 *   json     {"event":"batch","data":[<frame>,<frame>,…]}
 *   msgpack  the same object: a 2-entry map whose `data` is an array of the frames as sent one by one
 */
import { FORMAT_INDEX, type FormatIndex } from '../../../protocol/codec.js';
const MSGPACK_HEAD = Buffer.from([0x82, 0xa5, ...Buffer.from('event'), 0xa5, ...Buffer.from('batch'), 0xa4, ...Buffer.from('data'), 0xdd]);
const JSON_HEAD = Buffer.from('{"event":"batch","data":[');
const JSON_TAIL = Buffer.from(']}');
/** A batch this large goes out before its interval ends. */
export const MAX_BATCH_BYTES = 1 << 20;

export class FrameBatch {
  private buffer = Buffer.allocUnsafeSlow(64 * 1024);
  private length = 0;
  private count = 0;

  constructor(private readonly format: FormatIndex) {
    this.reset();
  }

  private reset(): void {
    this.length = (this.format === FORMAT_INDEX.json ? JSON_HEAD : MSGPACK_HEAD).copy(this.buffer, 0) + (this.format === FORMAT_INDEX.msgpack ? 4 : 0);
    this.count = 0;
  }

  get frames(): number {
    return this.count;
  }

  get bytes(): number {
    return this.length;
  }

  add(frame: Uint8Array): void {
    const need = this.length + frame.length + 3;
    if (need > this.buffer.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(need, this.buffer.length * 2));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    if (this.format === FORMAT_INDEX.json && this.count > 0) this.buffer[this.length++] = 0x2c; // ','
    this.buffer.set(frame, this.length);
    this.length += frame.length;
    this.count++;
  }

  /** The batch as one message (valid until the next add), and a fresh start. Null when empty. */
  take(): Uint8Array | null {
    if (this.count === 0) return null;
    let end = this.length;
    if (this.format === FORMAT_INDEX.json) end += JSON_TAIL.copy(this.buffer, end);
    else this.buffer.writeUInt32BE(this.count, MSGPACK_HEAD.length);
    const message = this.buffer.subarray(0, end);
    this.reset();
    return message;
  }

  /** A one-off batch of the given frames (the snapshot a batched socket starts with). */
  static of(format: FormatIndex, frames: Iterable<Uint8Array>): Uint8Array | null {
    const batch = new FrameBatch(format);
    for (const frame of frames) batch.add(frame);
    const message = batch.take();
    return message === null ? null : Uint8Array.from(message);
  }
}
