/**
 * The edge's snapshot handshake with ingest (edge/device-topics.ts), with ingest's messages fed in
 * the orders its port can deliver them. The app, the ingest port and the sockets are stand-ins that
 * record what they are given: the interleavings below cannot be forced through real threads.
 */
import { describe, expect, it } from 'vitest';
import { SharedStats } from '../../src/metrics/shared-stats.js';
import { DeviceTopics } from '../../src/features/telemetry/edge/device-topics.js';
import type { StreamSocket } from '../../src/features/telemetry/edge/stream-socket.js';

function setup() {
  const published: string[] = [];
  const posted: any[] = [];
  const app = {
    publish: (_topic: string, msg: Uint8Array) => {
      published.push(Buffer.from(msg).toString());
      return true;
    },
    numSubscribers: () => 1,
  };
  const port = { postMessage: (m: unknown) => posted.push(m) };
  const devices = new DeviceTopics(app as never, port as never, SharedStats.create(1).edgeWriter(0), 100);
  const socket = () => {
    const sent: string[] = [];
    const ws = {
      format: 0,
      devices: [] as string[],
      closed: false,
      pausedAt: null,
      sent,
      subscribe() {
        return true;
      },
      unsubscribe() {
        return true;
      },
      cork(f: () => void) {
        f();
      },
      send(b: Uint8Array) {
        sent.push(Buffer.from(b).toString());
        return 1;
      },
    };
    return ws as unknown as StreamSocket & { sent: string[] };
  };
  const frame = (text: string) => Buffer.from(text);
  return { devices, posted, published, socket, frame };
}

describe('DeviceTopics snapshots', () => {
  it("a socket that comes while a left socket's fill is still on its way waits for the newer fill", () => {
    const { devices, posted, socket, frame } = setup();
    devices.onIngestMessage({ t: 'device', index: 0, id: 'D' });
    const a = socket();
    devices.subscribe(a, ['D']);
    devices.release(a); // a leaves before its fill came: interest -1
    const b = socket();
    devices.subscribe(b, ['D']); // and b comes: interest +1 again
    expect(posted.map((m) => m.delta)).toEqual([1, -1, 1]);
    devices.onIngestMessage({ t: 'fill', id: 'D', format: 0, seq: 1, bytes: frame('p1') }); // the answer to a's +1
    devices.frame(0, 2, new Uint8Array(0), 0, 0, 0); // a position while no one wanted json: not encoded
    expect(b.sent).toEqual([]);
    devices.onIngestMessage({ t: 'fill', id: 'D', format: 0, seq: 2, bytes: frame('p2') }); // the answer to b's +1
    expect(b.sent).toEqual(['p2']); // the latest, not p1
  });

  it('a live frame before the fill is not sent again as the snapshot, but a socket that joined after it gets one', () => {
    const { devices, published, socket, frame } = setup();
    devices.onIngestMessage({ t: 'device', index: 0, id: 'E' });
    const first = socket();
    devices.subscribe(first, ['E']);
    const live = frame('live-5');
    devices.frame(0, 5, live, 0, live.length, 0); // encoded for another edge's subscriber, reaches first too
    const late = socket();
    devices.subscribe(late, ['E']); // joins while the fill is still on its way
    devices.onIngestMessage({ t: 'fill', id: 'E', format: 0, seq: 5, bytes: frame('live-5') });
    expect(published).toEqual(['live-5']);
    expect(first.sent).toEqual([]); // it has live-5 already
    expect(late.sent).toEqual(['live-5']);
  });
});
