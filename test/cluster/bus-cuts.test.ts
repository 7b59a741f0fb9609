/**
 * Issue 16, bullet 4 and Tests (docs/design/cluster-store.md §2.4-2.5, §6.1): gaps are repaired, not
 * just counted. A bridge that drops what crosses during a cut (cleansession true) and a node cut off
 * the bus on its own: its subscribers still get every offset once, in order, read from the store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metric, startCluster } from '../helpers/cluster.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { burstWithFault } from './burst.js';

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

describe('bus cuts', { timeout: 60_000 }, () => {
  it('two bridged Mosquittos with cleansession true (what crosses during the cut is dropped), cut mid-burst: nothing lost', async () => {
    const cluster = await startCluster({ nodes: 2, brokers: 'bridged', bridgeCleanSession: true, postgres });
    const relay = cluster.relay!;
    await burstWithFault(cluster, { fault: () => relay.cut(), heal: () => relay.restore() });
  });

  it("B's own MQTT connection cut while A writes: B's subscribers get every offset once, in order, and B counts the repairs", async () => {
    const cluster = await startCluster({ nodes: 2, postgres, mqttRelay: true });
    const [a, b] = cluster.nodes;
    await burstWithFault(cluster, { writeOn: [a], watchOn: [a, b], fault: () => b.mqttRelay!.cut(), heal: () => b.mqttRelay!.restore() });
    expect(await metric(b, 'events_gap_repaired_total')).toBeGreaterThan(0);
  });
});
