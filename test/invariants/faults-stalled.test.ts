/**
 * Stalled readers on one node: a stream client that stops reading is conflated, and every position
 * it did not get is counted in drops_total, exactly; a channel client that stops reading is closed
 * with 4000 (never skipped); the others on the same node receive everything, and the delivery
 * counters equal what the clients received. (Each behaviour alone: integration/resilience.test.ts
 * and entity-recovery.test.ts.)
 */
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { connectAsync } from 'mqtt';
import { eventually, startGateway } from '../helpers/gateway-process.js';
import { adminToken, channelEnv } from '../helpers/channels.js';
import { startFastReader } from '../helpers/fast-reader.js';
import { Bystander } from './bystander.js';
import { isEvent, metrics, offsetsOf, range } from './fault-helpers.js';

const PAD = 'p'.repeat(8000);
const socketOf = (b: Bystander) => (b.ws as unknown as { _socket: Socket })._socket;

describe('stalled readers', () => {
  it('conflates a stalled stream client with exact drops, closes a stalled channel client with 4000, and the others get everything; counters exact', async () => {
    const gw = await startGateway({
      env: channelEnv({ GATEWAY_WS_MAX_BACKPRESSURE: '262144', GATEWAY_SLOW_CONSUMER_TIMEOUT_MS: '60000', GATEWAY_EVENT_MAX_BUFFER_BYTES: '1048576' }),
    });
    const token = await adminToken();
    const positions = 3000; // 24 MB: more than the loopback buffers hold
    const events = 250; // 40 KB each: 10 MB, past the loopback buffers and the 1 MiB a channel socket may have unsent
    const fast = startFastReader(`${gw.ws}/api/v1/stream?device_ids=ST-1`, positions);
    const stalledStream = await Bystander.open('stalled stream client', `${gw.ws}/api/v1/stream?device_ids=ST-1`, 'json', (f) => f?.event === 'subscribed');
    const stalledChannel = await Bystander.open(
      'stalled channel client',
      `${gw.ws}/api/v1/ws?channel=general`,
      'json',
      (f) => f?.type === 'connection_established',
    );
    const healthy = await Bystander.open('healthy channel client', `${gw.ws}/ws/general`, 'msgpack', (f) => f?.type === 'connection_established');
    await fast.ready;
    socketOf(stalledStream).pause();
    socketOf(stalledChannel).pause();

    const bus = await connectAsync(gw.mqttUrl, { reconnectPeriod: 0 });
    const blob = 'x'.repeat(40_000);
    for (let i = 1; i <= Math.max(positions, events); i++) {
      if (i <= positions) await bus.publishAsync('gps/ST-1', JSON.stringify({ DEVICE_ID: 'ST-1', SEQ: i, PAD }));
      if (i <= events) {
        const res = await fetch(`${gw.http}/api/v1/channels/general/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'entity_event', entity_type: 'blob', event_type: 'created', entity_id: i, data: { i, blob } }),
        });
        expect(res.status).toBe(202);
      }
    }
    await bus.endAsync();
    expect(await fast.done).toEqual(range(1, positions));
    expect(await healthy.waitFor((f) => isEvent(f) && f.offset === events, 20_000)).toBe(true);
    expect(offsetsOf(healthy)).toEqual(range(1, events));

    await eventually(async () => (await metrics(gw)).gateway_slow_consumer_closes_total >= 1, 10_000, 'the channel client closed');
    socketOf(stalledStream).resume();
    socketOf(stalledChannel).resume();
    expect(await stalledStream.waitFor((f) => f?.event === 'message' && f.data.data.SEQ === positions, 30_000), 'the latest position after the drain').toBe(
      true,
    );
    await eventually(async () => stalledChannel.closedWith !== null, 10_000, "the stalled channel client's close");
    expect(stalledChannel.closedWith?.code).toBe(4000);
    const gotEvents = offsetsOf(stalledChannel);
    expect(gotEvents, 'what it got, in order, without a hole').toEqual(range(1, gotEvents.length));
    expect(gotEvents.length).toBeLessThan(events);

    const seqs = stalledStream.frames.filter((f) => f?.event === 'message').map((f) => f.data.data.SEQ as number);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
    expect(seqs.length).toBeLessThan(positions);
    const m = await metrics(gw);
    expect(m.gateway_conflations_total).toBeGreaterThanOrEqual(1);
    // Exact: each position the stalled client did not receive was counted as dropped, once.
    expect.soft(m.gateway_drops_total, 'drops_total').toBe(positions - seqs.length);
    // Live frames (deliveries) and snapshots are every position the stream clients received.
    expect.soft(m.gateway_deliveries_total + m.gateway_snapshots_sent_total, 'deliveries + snapshots').toBe(positions + seqs.length);
    expect.soft(m.gateway_slow_consumer_closes_total, 'slow_consumer_closes_total').toBe(1);
    // Frames handed to the stalled socket before its close may never have reached it: at least what arrived.
    expect.soft(m.gateway_channel_deliveries_total, 'channel deliveries').toBeGreaterThanOrEqual(events + gotEvents.length);
    expect.soft(m.gateway_channel_deliveries_total, 'channel deliveries').toBeLessThanOrEqual(2 * events);
    expect(healthy.violations()).toEqual([]);
    expect(stalledStream.violations()).toEqual([]);
  }, 90_000);
});
