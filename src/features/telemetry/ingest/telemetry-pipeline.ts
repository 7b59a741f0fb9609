/**
 * The ingest hot path: one MQTT message in, at most one frame record per message out, with one
 * encoding per wire format that some edge wants. Nothing here is per socket.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { TelemetryConfig } from '../../../config/config.js';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import { jsonEnvelopeLength, packMsgpackEnvelope, writeJsonEnvelope } from '../telemetry-envelope.js';
import { ALL_DEVICES, isValidDeviceId } from '../device-ids.js';
import { CODECS, type FormatIndex, WIRE_FORMATS } from '../../../protocol/codec.js';
import { TelemetryDecoder, type Rejection } from './telemetry-decoder.js';
import { DeviceTable, type DeviceState } from './device-table.js';
import { EdgeFanout } from '../../../ingest/edge-fanout.js';

const REJECTION_METRIC: Readonly<Record<Rejection, IngestMetric>> = {
  size: 'telemetry_rejected_size_total',
  utf8: 'telemetry_rejected_utf8_total',
  depth: 'telemetry_rejected_depth_total',
  json: 'telemetry_rejected_json_total',
  shape: 'telemetry_rejected_shape_total',
  device_id: 'telemetry_rejected_device_id_total',
};

/** A device's last position as a stream frame in one format (a snapshot; not the hot path). */
function snapshotFrame(device: DeviceState, format: FormatIndex): Uint8Array {
  const envelope = { event: 'message', data: { timestamp: device.timestamp, data: device.last } };
  const encoded = CODECS[WIRE_FORMATS[format]].encode(envelope);
  return typeof encoded === 'string' ? Buffer.from(encoded) : Uint8Array.from(encoded);
}

export class TelemetryPipeline {
  private readonly decoder: TelemetryDecoder;
  /** Every device seen (position-keeper.ts writes and restores their last positions). */
  readonly devices: DeviceTable;
  private readonly badPayloadLog: RateLimitedLog;
  private processedThisSecond = 0;

  constructor(
    config: TelemetryConfig,
    maxJsonDepth: number,
    private readonly fanout: EdgeFanout,
    private readonly stats: RowWriter<IngestMetric>,
    private readonly logger: Logger,
  ) {
    this.decoder = new TelemetryDecoder(config, maxJsonDepth);
    this.devices = new DeviceTable((device) => this.fanout.broadcast({ t: 'device', index: device.index, id: device.id }), config.positionsRetentionS > 0);
    this.badPayloadLog = new RateLimitedLog(logger);
  }

  handle(topic: string, payload: Buffer): void {
    this.stats.inc('mqtt_messages_received_total');
    const decoded = this.decoder.decode(topic, payload);
    if (!decoded.ok) {
      this.stats.inc(REJECTION_METRIC[decoded.reason]);
      this.badPayloadLog.warn({ topic, reason: decoded.reason, detail: decoded.detail, bytes: payload.length }, 'telemetry payload rejected');
      return;
    }
    // Timestamp taken when the message is accepted, before any queueing (docs/notes/latency.md).
    const timestamp = new Date().toISOString();
    const device = this.devices.get(decoded.deviceId);
    this.devices.recordPosition(device, decoded.value, timestamp);
    this.stats.inc('telemetry_messages_processed_total');
    this.processedThisSecond++;
    const all = this.devices.wantedAll;
    if (device.wanted[0] + device.wanted[1] + all[0] + all[1] === 0) return;
    this.appendFrame(device, payload);
  }

  private appendFrame(device: DeviceState, payload: Buffer): void {
    const all = this.devices.wantedAll;
    const wantJson = device.wanted[0] > 0 || all[0] > 0;
    const msgpack = device.wanted[1] > 0 || all[1] > 0 ? packMsgpackEnvelope(device.timestamp, device.last!) : null;
    const jsonLength = wantJson ? jsonEnvelopeLength(device.timestamp, payload) : 0;
    const msgpackLength = msgpack === null ? 0 : msgpack.length;
    const writer = this.fanout.writer;
    if (writer.wouldOverflow(jsonLength, msgpackLength)) this.fanout.flush();
    let end = writer.beginRecord(device.index, device.seq, jsonLength, msgpackLength);
    if (wantJson) end = writeJsonEnvelope(writer.buffer, end, device.timestamp, payload);
    writer.finishRecord(end, msgpack);
    this.stats.inc('frames_encoded_total', (wantJson ? 1 : 0) + (msgpack === null ? 0 : 1));
    this.fanout.scheduleFlush();
  }

  /**
   * An edge's first subscriber to (device, format) arrived or its last one left. On +1 the edge
   * gets the last position in that format (the snapshot), ordered after every frame sent so far.
   */
  interest(from: MessagePort, id: string, format: FormatIndex, delta: 1 | -1): void {
    if (id === ALL_DEVICES) return this.allInterest(from, format, delta);
    if (!isValidDeviceId(id)) return; // edges validate first; never trust a cross-thread string blindly
    const device = this.devices.get(id);
    if (!this.devices.changeInterest(device, format, delta)) {
      this.logger.error({ id, format }, 'interest count went negative; ignoring');
      return;
    }
    this.stats.set('devices_monitored', this.devices.devicesMonitored);
    if (delta !== 1) return;
    const bytes = device.last === null ? null : snapshotFrame(device, format);
    this.fanout.sendTo(from, { t: 'fill', id, format, seq: device.seq, bytes });
  }

  /**
   * The same for `*` (every device): from now on every device is encoded in that format, and the
   * edge gets the last position of every device that has one, in one message.
   */
  private allInterest(from: MessagePort, format: FormatIndex, delta: 1 | -1): void {
    if (!this.devices.changeAllInterest(format, delta)) {
      this.logger.error({ format }, 'all-devices interest count went negative; ignoring');
      return;
    }
    if (delta !== 1) return;
    const devices = [];
    for (const device of this.devices.positioned()) devices.push({ id: device.id, seq: device.seq, bytes: snapshotFrame(device, format) });
    this.fanout.sendTo(from, { t: 'fill-all', format, devices });
  }

  /** Called once a second: publishes the rate and gauges. */
  tick(): void {
    this.stats.set('ingest_rate_per_second', this.processedThisSecond);
    this.processedThisSecond = 0;
    this.stats.set('devices_known', this.devices.devicesKnown);
  }
}
