/**
 * Issue 16, bullet 5 (docs/design/cluster-store.md §3, §6.1): nothing waits on a dead node. Three
 * nodes; A is SIGKILLed while A and B write: every event A committed reaches B's and C's
 * subscribers, once, in order, within the outbox lease (GATEWAY_OUTBOX_LEASE_MS, 2 s in the
 * harness) and a few seconds, published by another node when A could not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metric, startCluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/gateway-process.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { burstWithFault } from './burst.js';

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

describe('a node killed during writes', { timeout: 60_000 }, () => {
  it('SIGKILL of A mid-burst (A and B writing): every 2xx write reaches B and C once, in order', async () => {
    const cluster = await startCluster({ nodes: 3, postgres });
    const [a, b, c] = cluster.nodes;
    await burstWithFault(cluster, {
      writeOn: [a, b],
      watchOn: [b, c],
      mayFail: [a],
      fault: () => cluster.kill(0),
      heal: () => undefined,
      deliveryMs: 10_000,
    });
    expect(a.alive).toBe(false);
  });

  it("A off the bus, then SIGKILLed: the rows it committed but never published are published by B or C after A's lease", async () => {
    const cluster = await startCluster({ nodes: 3, postgres, mqttRelay: true });
    const [a, b, c] = cluster.nodes;
    await burstWithFault(cluster, {
      writeOn: [a, b],
      watchOn: [b, c],
      mayFail: [a],
      // A keeps answering 201 with its relay cut off the broker: its outbox fills with rows only another node can publish.
      fault: () => a.mqttRelay!.cut(),
      heal: () => cluster.kill(0),
      healAfter: 100,
      deliveryMs: 10_000,
    });
    // B and C's subscribers already have every event (read from the log); A's rows are published once its lease lapses.
    await eventually(
      async () => Number((await cluster.pg.query('SELECT count(*) AS n FROM outbox')).rows[0].n) === 0,
      10_000,
      "A's rows published by another node",
    );
    expect((await metric(b, 'outbox_taken_over_total')) + (await metric(c, 'outbox_taken_over_total'))).toBeGreaterThan(0);
  });
});
