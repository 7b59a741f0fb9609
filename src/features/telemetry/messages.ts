/**
 * Telemetry's thread messages (threads/messages.ts composes every feature's into IngestToEdge and
 * EdgeToIngest). Ingest → edge messages go over one MessagePort per edge, so their order is the
 * order ingest sent them in (the snapshot protocol below relies on it).
 *
 * Snapshot protocol: when an edge gets its first subscriber to (device, format) it sends
 * `interest +1`; ingest flushes pending frames, answers that edge with a `fill` holding the last
 * position in that format (or `bytes: null` if it has none) and from then on encodes the format
 * for the device. Frames for a device after the fill therefore always carry the format.
 */
import type { FormatIndex } from '../../protocol/codec.js';

export type TelemetryToEdge =
  | { readonly t: 'device'; readonly index: number; readonly id: string }
  | { readonly t: 'frames'; readonly buffer: ArrayBuffer; readonly length: number }
  | { readonly t: 'fill'; readonly id: string; readonly format: FormatIndex; readonly seq: number; readonly bytes: Uint8Array | null }
  /** The fill for `interest` in `*` (every device): each device's last position in that format. */
  | {
      readonly t: 'fill-all';
      readonly format: FormatIndex;
      readonly devices: readonly { readonly id: string; readonly seq: number; readonly bytes: Uint8Array }[];
    };

export type TelemetryToIngest = { readonly t: 'interest'; readonly id: string; readonly format: FormatIndex; readonly delta: 1 | -1 };
