/**
 * addUserToGroup applies to the user's future connections, as the service does (user-groups.ts),
 * with the official SDKs on one node (SQLite): a user added while not connected joins at connect,
 * before its `connected` frame; removeUserFromGroup and removeUserFromAllGroups end the relation; a
 * group exists only while it has a connection; the relation survives a restart (the store); past
 * its bound the call is refused 409 GW_ERR_AZURE_USER_GROUPS_FULL.
 */
import { describe, expect, it } from 'vitest';
import { ACCESS_KEY, collect, serviceClient, startClient } from '../helpers/azure.js';
import { channelEnv } from '../helpers/channels.js';
import { eventually, startGateway, tempDataDir, type GatewayProcess } from '../helpers/gateway-process.js';

const connectAs = async (gw: GatewayProcess, userId: string) => {
  const svc = serviceClient(gw, 'chat');
  const client = await startClient(async () => (await svc.getClientAccessToken({ userId })).url, { autoReconnect: false });
  const id = await eventually(async () => (client as any)._connectionId as string | undefined, 10_000, 'the connected message');
  return { client, id, messages: collect(client) };
};

describe('Azure addUserToGroup for future connections', { timeout: 40_000 }, () => {
  it("a user's later connections join its groups until it is removed; the relation is kept in the store", async () => {
    const env = channelEnv({
      GATEWAY_DATA_DIR: tempDataDir(),
      GATEWAY_AZURE_ACCESS_KEY: ACCESS_KEY,
      GATEWAY_AZURE_HUBS: 'chat',
      GATEWAY_AZURE_USER_GROUPS_PER_USER: '3',
    });
    const gw = await startGateway({ env });
    const svc = serviceClient(gw, 'chat');

    await svc.group('team').addUser('uma');
    await svc.group('crew').addUser('uma');
    expect(await svc.groupExists('team')).toBe(false); // no connection: no group (the relation alone does not make one)
    expect(await svc.userExists('uma')).toBe(false);

    const first = await connectAs(gw, 'uma');
    // in its groups as it opened: the directory learns the connection with them, in one report
    await eventually(() => svc.userExists('uma'), 10_000, 'uma connected');
    expect(await svc.groupExists('team')).toBe(true);
    expect(await svc.groupExists('crew')).toBe(true);
    await svc.group('team').sendToAll({ n: 1 });
    expect((await first.messages.until(1))[0]).toMatchObject({ kind: 'groupData', group: 'team', data: { n: 1 } });

    // removeUserFromGroup: the current connection leaves now, the next one does not join
    await svc.group('team').removeUser('uma');
    await eventually(async () => !(await svc.groupExists('team')), 10_000, 'team empty');
    const second = await connectAs(gw, 'uma');
    await svc.group('team').sendToAll({ n: 2 });
    await svc.group('crew').sendToAll({ n: 3 }); // still in crew: this arrives, team's did not
    expect((await second.messages.until(1))[0]).toMatchObject({ group: 'crew', data: { n: 3 } });

    // the bound: 3 groups per user of a hub
    await svc.group('g1').addUser('uma');
    await svc.group('g2').addUser('uma');
    await expect(svc.group('g3').addUser('uma')).rejects.toMatchObject({ statusCode: 409, code: 'GW_ERR_AZURE_USER_GROUPS_FULL' });
    await svc.group('g2').addUser('uma'); // one it has: no refusal
    await svc.group('g1').addUser('vic'); // another user: a count of its own
    await expect(svc.group('g1').addUser('v'.repeat(1025))).rejects.toMatchObject({ statusCode: 400, code: 'GW_ERR_AZURE_REQUEST_INVALID' });

    // kept in the store: after a restart a new connection of uma is in crew, g1 and g2
    first.client.stop();
    second.client.stop();
    await gw.stop();
    const again = await startGateway({ env });
    const svc2 = serviceClient(again, 'chat');
    const third = await connectAs(again, 'uma');
    await eventually(() => svc2.userExists('uma'), 10_000, 'uma back');
    expect([await svc2.groupExists('crew'), await svc2.groupExists('g1'), await svc2.groupExists('g2'), await svc2.groupExists('team')]).toEqual([
      true,
      true,
      true,
      false,
    ]);

    // removeUserFromAllGroups: the next connection joins none
    await svc2.removeUserFromAllGroups('uma');
    await eventually(async () => !(await svc2.groupExists('crew')), 10_000, 'crew empty');
    third.client.stop();
    const fourth = await connectAs(again, 'uma');
    await svc2.group('crew').sendToAll({ n: 4 });
    await svc2.sendToConnection(fourth.id, { n: 5 });
    expect((await fourth.messages.until(1))[0]).toMatchObject({ kind: 'serverData', data: { n: 5 } });
    expect(await svc2.groupExists('crew')).toBe(false);
  });
});
