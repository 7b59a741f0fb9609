/**
 * The gateway process ended during a burst of REST writes, then started again on the same data
 * directory: by SIGTERM (every client gets 1001, the process exits 0) and by SIGKILL (no goodbye
 * at all). Every write answered 2xx must be in the history afterwards and reach a client that
 * resumes with since/epoch, each offset and entity once; writes whose answer never came may or may
 * not be there, never twice. (A restart after the writes: integration/entity-recovery.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { eventually, startGateway, tempDataDir, type GatewayProcess } from '../helpers/gateway-process.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { adminToken, channelEnv } from '../helpers/channels.js';
import { mintJwt } from '../helpers/tokens.js';
import { Bystander } from './bystander.js';
import { duplicates, isEvent, offsetsOf, range, startWriters } from './fault-helpers.js';

const established = (f: any) => f?.type === 'connection_established';

async function subscribers(gw: GatewayProcess): Promise<Bystander[]> {
  return [
    await Bystander.open('channel json', `${gw.ws}/api/v1/ws?channel=readings`, 'json', established),
    await Bystander.open('channel msgpack', `${gw.ws}/ws/readings`, 'msgpack', established),
    await Bystander.open('/ws/connect user', `${gw.ws}/ws/connect?token=${await mintJwt('u-process', { roles: ['admin'] })}`, 'json', established),
    await Bystander.open('stream', `${gw.ws}/api/v1/stream?device_ids=P-1`, 'msgpack', (f) => f?.event === 'subscribed'),
  ];
}

/** Kills the gateway mid-burst, restarts it, and checks every acknowledged write came through once. */
async function endDuringWrites(signal: 'SIGTERM' | 'SIGKILL', env: Record<string, string>): Promise<{ before: Bystander[] }> {
  const token = await adminToken();
  let gw = await startGateway({ env });
  const before = await subscribers(gw);
  const epoch = before[0].frames[0].epoch as string;
  const writes = startWriters(() => gw.http, token, { writers: 4, total: 5000, stopOnFailure: true });
  await before[0].waitFor((f) => isEvent(f) && f.offset >= 150, 20_000);
  const code = await gw.stop(signal);
  await writes.done;
  if (signal === 'SIGTERM') expect(code).toBe(0);
  expect(
    writes.refused.every((r) => r.startsWith('503')),
    writes.refused.join('; '),
  ).toBe(true); // shutting down: 503, nothing else

  gw = await startGateway({ env });
  const seen = offsetsOf(before[0]);
  const back = await Bystander.open('channel json, back', `${gw.ws}/api/v1/ws?channel=readings&since=${seen.at(-1) ?? 0}&epoch=${epoch}`, 'json', established);
  expect(back.frames[0], 'the same history after the restart').toMatchObject({ type: 'connection_established', recovered: true, epoch });
  const all = await Bystander.open('channel json, from the start', `${gw.ws}/api/v1/ws?channel=readings&since=0&epoch=${epoch}`, 'json', established);
  // Rows committed to the outbox before the end but not yet relayed are published by the new process.
  const ackedMax = Math.max(...writes.acked);
  const diagnose = (b: Bystander) =>
    `${b.name}: first ${JSON.stringify(b.frames[0])}, ${offsetsOf(b).length} events up to ${offsetsOf(b).at(-1)}, closed ${JSON.stringify(b.closedWith)}; acked ${writes.acked.length} up to ${ackedMax}, unknown ${writes.unknown}`;
  const idsOf = (b: Bystander) => b.frames.filter(isEvent).map((f) => f.entity_id as number);
  expect(await all.waitFor((f) => isEvent(f) && f.entity_id === ackedMax, 15_000), `entity ${ackedMax} after the restart; ${diagnose(all)}`).toBe(true);
  // Both clients end at the channel's head (the acknowledged writes, and any unanswered one that was stored).
  const head = async () => ((await (await fetch(`${gw.http}/api/v1/ws/stats/readings`)).json()) as { offset: number }).offset;
  await eventually(
    async () => {
      const h = await head();
      return offsetsOf(all).at(-1) === h && (offsetsOf(back).at(-1) ?? seen.at(-1)) === h;
    },
    15_000,
    `both clients at the head; ${diagnose(all)}; ${diagnose(back)}`,
  );

  const history = offsetsOf(all);
  expect(history, 'offsets').toEqual(range(1, history.length));
  expect(duplicates(idsOf(all)), 'entities delivered twice').toEqual([]);
  const delivered = new Set(idsOf(all));
  expect(
    writes.acked.filter((id) => !delivered.has(id)),
    'acknowledged writes lost',
  ).toEqual([]);
  // Only writes whose answer never came may be there besides the acknowledged ones.
  expect(delivered.size - writes.acked.length).toBeLessThanOrEqual(writes.unknown);
  expect([...seen, ...offsetsOf(back)], 'seen before + replayed').toEqual(range(1, history.length));
  return { before };
}

describe('the process ended during writes', () => {
  it('SIGTERM: every client gets 1001, the process exits 0, and every acknowledged write is replayed after the restart, once', async () => {
    const env = channelEnv({ GATEWAY_DATA_DIR: tempDataDir() });
    const { before } = await endDuringWrites('SIGTERM', env);
    for (const b of before) expect(b.closedWith?.code, b.name).toBe(1001);
  }, 60_000);

  it('SIGKILL with Mosquitto: committed events reach subscribers after the restart on the same data directory, none twice', async () => {
    const mosquitto = await startMosquitto();
    const env = channelEnv({ GATEWAY_DATA_DIR: tempDataDir(), MQTT_URL: mosquitto.url, GATEWAY_OUTBOX_LEASE_MS: '300' });
    const { before } = await endDuringWrites('SIGKILL', env);
    for (const b of before) expect(b.closedWith?.code, b.name).toBe(1006);
  }, 60_000);
});
