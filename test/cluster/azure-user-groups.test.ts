/**
 * addUserToGroup for a user's future connections across the cluster (user-groups.ts): the relation
 * is kept in the shared PostgreSQL store and reaches every node's edges over the bus, so a user added
 * on node A while not connected is in the group when it connects on B, and on a node C started
 * after the call (which loads it from the store). removeUserFromGroup on A: the next connection on
 * B or C is not. Real Mosquitto and PostgreSQL, the official SDKs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, serviceClient, startClient } from '../helpers/azure.js';
import { startCluster } from '../helpers/cluster.js';
import { eventually, type GatewayProcess } from '../helpers/gateway-process.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

async function connectOn(gw: GatewayProcess, userId: string) {
  const svc = serviceClient(gw, 'chat');
  const client = await startClient(async () => (await svc.getClientAccessToken({ userId })).url, { autoReconnect: false });
  return {
    client,
    id: await eventually(async () => (client as any)._connectionId as string | undefined, 10_000, 'the connected message'),
    messages: collect(client),
  };
}

describe('Azure addUserToGroup across nodes', { timeout: 40_000 }, () => {
  it('a user added on A joins at connect on B and on a node started after the call, until removed', async () => {
    const cluster = await startCluster({ nodes: 2, postgres });
    const [a, b] = cluster.nodes;
    const svcA = serviceClient(a, 'chat');
    const svcB = serviceClient(b, 'chat');

    await svcA.group('team').addUser('uma');
    expect(await svcA.groupExists('team')).toBe(false);
    const { rows } = await cluster.pg.query('SELECT hub, user_id, group_name FROM azure_user_groups');
    expect(rows).toEqual([{ hub: 'chat', user_id: 'uma', group_name: 'team' }]);

    // on B: in team as it opens (B's directory has the connection with its group in one report)
    const onB = await connectOn(b, 'uma');
    await eventually(() => svcB.userExists('uma'), 10_000, 'uma on B');
    expect(await svcB.groupExists('team')).toBe(true);
    await eventually(() => svcA.groupExists('team'), 10_000, "A sees B's member of team");
    await svcA.group('team').sendToAll({ n: 1 });
    expect((await onB.messages.until(1))[0]).toMatchObject({ group: 'team', data: { n: 1 } });

    // a node started after the call loads the relation from the store
    const c = await cluster.addNode();
    const svcC = serviceClient(c, 'chat');
    const onC = await connectOn(c, 'uma');
    await eventually(() => svcC.userExists('uma'), 10_000, 'uma on C');
    expect(await svcC.groupExists('team')).toBe(true);
    await svcA.group('team').sendToAll({ n: 2 });
    expect((await onC.messages.until(1))[0]).toMatchObject({ group: 'team', data: { n: 2 } });
    expect((await onB.messages.until(2))[1]).toMatchObject({ group: 'team', data: { n: 2 } });

    // removeUserFromGroup on A: everyone's connections leave; the next ones, on B and on C, do not join
    await svcA.group('team').removeUser('uma');
    await eventually(
      async () => !(await svcA.groupExists('team')) && !(await svcB.groupExists('team')) && !(await svcC.groupExists('team')),
      10_000,
      'team empty on every node',
    );
    expect((await cluster.pg.query('SELECT count(*)::int AS n FROM azure_user_groups')).rows[0].n).toBe(0);
    onB.client.stop();
    onC.client.stop();
    for (const [gw, svc] of [
      [b, svcB],
      [c, svcC],
    ] as const) {
      const next = await connectOn(gw, 'uma');
      await svcA.group('team').sendToAll({ n: 3 });
      await svc.sendToConnection(next.id, { n: 4 }); // the marker arrives alone
      expect((await next.messages.until(1))[0]).toMatchObject({ kind: 'serverData', data: { n: 4 } });
      // presence is eventually consistent: a snapshot taken before the remove may still be on its way
      await eventually(async () => !(await svc.groupExists('team')), 10_000, 'team still empty');
      next.client.stop();
    }
  });
});
