/**
 * Each endpoint family's envelope of a channel event, with the event's `offset` and `epoch` added
 * (fields are added, never renamed). Rendered once per event by the ingest thread, in every
 * envelope and wire format, so every subscriber of a (channel, envelope, format) gets the same bytes.
 *
 *   ENTITY_EVENT     0  entity_event     /api/v1/ws?channel=…   (docs/compat/sensor-events.md)
 *   REALTIME_UPDATE  1  realtime_update  /ws/{channel}          (docs/compat/pet-care.md)
 *   CONNECT          2  <entity>_event   /ws/connect            (docs/compat/user-hub.md: task_event, efectivo_event, …)
 *
 * A notification has one shape on every endpoint (docs/compat/pet-care.md).
 */
import { CODECS, type FormatIndex, WIRE_FORMATS } from '../../protocol/codec.js';
import type { ChannelEvent } from './channel-event.js';

/** The envelope kinds: the `<envelope>` of the `ch.<envelope>.<format>` topics, and the order of EventFrames. */
export const ENVELOPE = { ENTITY_EVENT: 0, REALTIME_UPDATE: 1, CONNECT: 2 } as const;
export type EnvelopeIndex = (typeof ENVELOPE)[keyof typeof ENVELOPE];
/** The envelopes of the channel endpoints (/api/v1/ws and /ws/{channel}). */
export type ChannelEnvelope = typeof ENVELOPE.ENTITY_EVENT | typeof ENVELOPE.REALTIME_UPDATE;

/** frames[frameIndex(envelope, format)]: JSON text or msgpack bytes. */
export type EventFrames = readonly (string | Uint8Array)[];

export function frameIndex(envelope: EnvelopeIndex, format: FormatIndex): number {
  return envelope * WIRE_FORMATS.length + format;
}

/** The event in each envelope, in ENVELOPE order. */
function shapes(event: ChannelEvent, channel: string, offset: number, epoch: string): readonly object[] {
  if (event.kind === 'notification') {
    const n = {
      type: 'notification',
      notification_type: event.notificationType,
      ...(event.userId === null ? {} : { user_id: event.userId }),
      data: event.data,
      timestamp: event.timestamp,
      channel,
      offset,
      epoch,
    };
    return [n, n, n];
  }
  return [
    {
      type: 'entity_event',
      entity_type: event.entityType,
      event_type: event.action,
      entity_id: event.entityId,
      data: event.data,
      timestamp: event.timestamp,
      ...(event.metadata ? { metadata: event.metadata } : {}),
      offset,
      epoch,
    },
    { type: 'realtime_update', entity_type: event.entityType, action: event.action, data: event.data, timestamp: event.timestamp, offset, epoch },
    {
      type: `${event.entityType}_event`,
      action: event.action,
      entity_id: event.entityId,
      data: event.data,
      timestamp: event.timestamp,
      channel,
      offset,
      epoch,
    },
  ];
}

export function renderEvent(event: ChannelEvent, channel: string, offset: number, epoch: string): EventFrames {
  const frames: (string | Uint8Array)[] = [];
  let previous: object | undefined;
  for (const shape of shapes(event, channel, offset, epoch)) {
    if (shape === previous) {
      // A notification: the same bytes on every endpoint, encoded once.
      frames.push(frames[frames.length - 2], frames[frames.length - 1]);
      continue;
    }
    // An exact-size copy: the frames cross to the edges, and cloning a view clones its whole buffer.
    frames.push(CODECS.json.encode(shape), Uint8Array.from(CODECS.msgpack.encode(shape) as Uint8Array));
    previous = shape;
  }
  return frames;
}
