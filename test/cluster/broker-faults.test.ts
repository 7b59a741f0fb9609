/**
 * Issue 16, Tests (docs/design/cluster-store.md §2.4-2.5, §6.1): a broker restart and a bridge cut
 * during a burst of writes on both nodes lose nothing. Every 2xx write reaches the subscribers on
 * both nodes once, in offset order, the same stream on each: what the bus dropped is read from the
 * store's log (gap repair, head poll).
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startCluster } from '../helpers/cluster.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { burstWithFault } from './burst.js';

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

describe('broker faults during a burst of writes on both nodes', { timeout: 60_000 }, () => {
  it('one Mosquitto, stopped and started again mid-burst: every 2xx write once, in offset order, on both nodes', async () => {
    const cluster = await startCluster({ nodes: 2, postgres });
    const broker = cluster.brokers.list[0];
    await burstWithFault(cluster, { fault: () => broker.stop(), heal: () => broker.start() });
  });

  it(
    "two bridged Mosquittos (the bridge's cleansession false, Mosquitto's default), the bridge cut mid-burst: nothing lost on either side",
    { timeout: 60_000 },
    async () => {
      const cluster = await startCluster({ nodes: 2, brokers: 'bridged', postgres });
      const relay = cluster.relay!;
      await burstWithFault(cluster, { fault: () => relay.cut(), heal: () => relay.restore() });
    },
  );
});
