/**
 * A well-behaved stream client on device OK1, for tests that throw bad input at a gateway: each
 * call checks that the process still runs and that a fresh position still reaches the client.
 */
import { expect } from 'vitest';
import type { GatewayProcess } from './gateway-process.js';
import { connectPublisher } from './publisher.js';
import { connectStream, isMessage } from './stream-client.js';

export async function streamBystander(gw: GatewayProcess): Promise<(n: number) => Promise<void>> {
  const client = await connectStream(gw.ws, '?device_ids=OK1');
  await client.next((f) => f.event === 'subscribed');
  const pub = await connectPublisher(gw.mqttUrl);
  return async (n: number) => {
    expect(gw.child.exitCode).toBeNull();
    await pub.position('OK1', { N: n });
    expect((await client.next(isMessage('OK1'))).data.data.N).toBe(n);
  };
}
