/**
 * The binary format of a batch of telemetry frames crossing from ingest to the edges. One batch is
 * one postMessage per edge instead of one per frame. Each record:
 *
 *   u32 deviceIndex | u32 seq | u32 jsonLength | u32 msgpackLength | json bytes | msgpack bytes
 *
 * A length of 0 means the format was not encoded (no subscriber wanted it). Little-endian.
 */
const RECORD_HEADER_BYTES = 16;

export class FrameBatchWriter {
  private bytes: Buffer;
  private view: DataView;
  private offset = 0;

  constructor(private readonly capacity: number) {
    this.bytes = FrameBatchWriter.allocate(capacity);
    this.view = new DataView(this.bytes.buffer);
  }

  // Its own ArrayBuffer, never Node's shared pool (profiled: zero-filling a fresh one per batch
  // cost more than the encoding, so the writer keeps one and hands out exact-size copies).
  private static allocate(size: number): Buffer {
    return Buffer.from(new ArrayBuffer(size));
  }

  get length(): number {
    return this.offset;
  }

  /** True when a record of this size would not fit; the caller flushes first. */
  wouldOverflow(jsonLength: number, msgpackLength: number): boolean {
    return this.offset > 0 && this.offset + RECORD_HEADER_BYTES + jsonLength + msgpackLength > this.bytes.length;
  }

  /**
   * Starts a record and returns the offset where its JSON bytes go. The caller writes the JSON
   * (exactly jsonLength bytes) at that offset, then calls `finishRecord` with the msgpack bytes.
   */
  beginRecord(deviceIndex: number, seq: number, jsonLength: number, msgpackLength: number): number {
    const needed = this.offset + RECORD_HEADER_BYTES + jsonLength + msgpackLength;
    if (needed > this.bytes.length) {
      // Only a single record larger than the batch capacity gets here (wouldOverflow flushed the rest).
      const bigger = FrameBatchWriter.allocate(needed);
      this.bytes.copy(bigger, 0, 0, this.offset);
      this.bytes = bigger;
      this.view = new DataView(bigger.buffer);
    }
    const o = this.offset;
    this.view.setUint32(o, deviceIndex, true);
    this.view.setUint32(o + 4, seq, true);
    this.view.setUint32(o + 8, jsonLength, true);
    this.view.setUint32(o + 12, msgpackLength, true);
    return o + RECORD_HEADER_BYTES;
  }

  get buffer(): Buffer {
    return this.bytes;
  }

  finishRecord(jsonEnd: number, msgpack: Uint8Array | null): void {
    let o = jsonEnd;
    if (msgpack !== null) {
      this.bytes.set(msgpack, o);
      o += msgpack.length;
    }
    this.offset = o;
  }

  /**
   * Copies the filled bytes into `copies` exact-size ArrayBuffers (transferable, one per edge) and
   * starts the next batch in the same buffer.
   */
  take(copies = 1): ArrayBuffer[] {
    const out: ArrayBuffer[] = [];
    const used = (this.bytes.buffer as ArrayBuffer).slice(0, this.offset);
    out.push(used);
    for (let i = 1; i < copies; i++) out.push(used.slice(0));
    if (this.bytes.length > this.capacity) {
      // A single oversized record grew the buffer; go back to the configured size.
      this.bytes = FrameBatchWriter.allocate(this.capacity);
      this.view = new DataView(this.bytes.buffer);
    }
    this.offset = 0;
    return out;
  }
}

export interface FrameVisitor {
  frame(deviceIndex: number, seq: number, bytes: Uint8Array, jsonStart: number, jsonLength: number, msgpackLength: number): void;
}

/** Walks the records of a batch without copying; the visitor gets offsets into `bytes`. */
export function readFrameBatch(buffer: ArrayBuffer, length: number, visitor: FrameVisitor): void {
  const view = new DataView(buffer, 0, length);
  const bytes = new Uint8Array(buffer, 0, length);
  let o = 0;
  while (o + RECORD_HEADER_BYTES <= length) {
    const index = view.getUint32(o, true);
    const seq = view.getUint32(o + 4, true);
    const jsonLength = view.getUint32(o + 8, true);
    const msgpackLength = view.getUint32(o + 12, true);
    const start = o + RECORD_HEADER_BYTES;
    visitor.frame(index, seq, bytes, start, jsonLength, msgpackLength);
    o = start + jsonLength + msgpackLength;
  }
}
