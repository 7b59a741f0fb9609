/**
 * Sends frames from ingest to every edge thread. Frames are appended to one batch and flushed at
 * the end of the event-loop turn (or when the batch is full): one postMessage per edge per batch.
 * Each edge receives its own exact-size copy by transfer.
 */
import type { MessagePort } from 'node:worker_threads';
import type { IngestToEdge } from '../threads/messages.js';
import { FrameBatchWriter } from '../threads/frame-batch.js';

export class EdgeFanout {
  readonly writer: FrameBatchWriter;
  private flushScheduled = false;
  private batches = 0;

  constructor(
    private readonly ports: readonly MessagePort[],
    batchMaxBytes: number,
    private readonly onBatch: () => void,
  ) {
    this.writer = new FrameBatchWriter(batchMaxBytes);
  }

  /** Call after appending a record: schedules the end-of-turn flush. */
  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.writer.length === 0) return;
    const copies = this.writer.take(this.ports.length);
    for (let i = 0; i < this.ports.length; i++) {
      const buffer = copies[i];
      this.ports[i].postMessage({ t: 'frames', buffer, length: buffer.byteLength } satisfies IngestToEdge, [buffer]);
    }
    this.batches++;
    this.onBatch();
  }

  /** Sends a control message to every edge, after any frames already batched. */
  broadcast(message: IngestToEdge): void {
    this.flush();
    for (const port of this.ports) port.postMessage(message);
  }

  /** Sends a control message to one edge, after any frames already batched. */
  sendTo(port: MessagePort, message: IngestToEdge): void {
    this.flush();
    port.postMessage(message);
  }

  get batchesSent(): number {
    return this.batches;
  }
}
