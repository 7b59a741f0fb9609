/**
 * Decodes and validates one MQTT telemetry payload, once. A payload is accepted when it is at most
 * GATEWAY_MAX_PAYLOAD_BYTES, is UTF-8, nested at most GATEWAY_MAX_JSON_DEPTH deep (one scan of the
 * bytes before JSON.parse: protocol/bounded-json.ts), is a JSON object, and carries a valid device
 * id (from the configured field, or from a topic level). Anything else is classified so it can be
 * counted and logged. An accepted payload's bytes are relayed as they are to JSON clients, so the
 * UTF-8 check is what keeps a device from sending their WebSocket libraries invalid text.
 */
import type { TelemetryConfig } from '../../../config/config.js';
import { scanJsonBytes } from '../../../protocol/bounded-json.js';
import { isValidDeviceId } from '../device-ids.js';

export type Rejection = 'size' | 'utf8' | 'depth' | 'json' | 'shape' | 'device_id';

type Decoded =
  | { readonly ok: true; readonly deviceId: string; readonly value: Record<string, unknown> }
  | { readonly ok: false; readonly reason: Rejection; readonly detail: string };

export class TelemetryDecoder {
  constructor(
    private readonly config: TelemetryConfig,
    private readonly maxJsonDepth: number,
  ) {}

  decode(topic: string, payload: Buffer): Decoded {
    if (payload.length > this.config.maxPayloadBytes) {
      return { ok: false, reason: 'size', detail: `${payload.length} bytes > ${this.config.maxPayloadBytes}` };
    }
    const scan = scanJsonBytes(payload, this.maxJsonDepth);
    if (scan === 'utf8') return { ok: false, reason: 'utf8', detail: 'not valid UTF-8' };
    if (scan === 'depth') return { ok: false, reason: 'depth', detail: `nested deeper than ${this.maxJsonDepth} levels` };
    if (scan === 'unbalanced') return { ok: false, reason: 'json', detail: 'a closing bracket without its opening one' };
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      return { ok: false, reason: 'json', detail: (err as Error).message };
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return {
        ok: false,
        reason: 'shape',
        detail: `payload is ${Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'null' : typeof value}, not an object`,
      };
    }
    const record = value as Record<string, unknown>;
    const deviceId = this.deviceIdOf(topic, record);
    if (deviceId === undefined) {
      return {
        ok: false,
        reason: 'device_id',
        detail:
          this.config.deviceIdTopicLevel === undefined
            ? `missing or invalid ${this.config.deviceIdField}`
            : `invalid device id at topic level ${this.config.deviceIdTopicLevel}`,
      };
    }
    return { ok: true, deviceId, value: record };
  }

  private deviceIdOf(topic: string, record: Record<string, unknown>): string | undefined {
    let raw: unknown;
    if (this.config.deviceIdTopicLevel !== undefined) {
      raw = topic.split('/')[this.config.deviceIdTopicLevel];
    } else {
      raw = record[this.config.deviceIdField];
    }
    const id = typeof raw === 'number' && Number.isSafeInteger(raw) ? String(raw) : raw;
    return typeof id === 'string' && isValidDeviceId(id) ? id : undefined;
  }
}
