/** The user-group relation (user-groups.ts) and its load at ingest's start (azure-user-groups-load.ts). */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AzureCommand } from '../../src/features/azure/commands.js';
import { UserGroupsLoad } from '../../src/features/azure/ingest/azure-user-groups-load.js';
import type { AzureToEdge } from '../../src/features/azure/messages.js';
import { UserGroups, type UserGroup } from '../../src/features/azure/user-groups.js';
import type { AzureUserGroupRepository } from '../../src/store/store.js';

const user = (name: string) => ({ kind: 'user', name }) as const;
const join = (group: string, who: string): AzureCommand => ({ op: 'join', group, who: user(who) });
const leave = (group: string, who: string): AzureCommand => ({ op: 'leave', group, who: user(who) });
const leaveAll = (who: string): AzureCommand => ({ op: 'leaveAll', who: user(who) });

describe('UserGroups', () => {
  it('follows the membership commands that name a user, per hub', () => {
    const m = new UserGroups();
    m.apply('chat', join('g1', 'u'));
    m.apply('chat', join('g2', 'u'));
    m.apply('chat', join('g1', 'u')); // twice: once
    m.apply('other', join('g1', 'u'));
    expect([...m.groups('chat', 'u')]).toEqual(['g1', 'g2']);
    expect(m.size).toBe(3);
    m.apply('chat', leave('g1', 'u'));
    expect([...m.groups('chat', 'u')]).toEqual(['g2']);
    m.apply('chat', leaveAll('u'));
    expect([...m.groups('chat', 'u')]).toEqual([]);
    expect([...m.groups('other', 'u')]).toEqual(['g1']);
    expect(m.size).toBe(1);
  });

  it('ignores what does not name a user: a connection, a group, a filter, a send', () => {
    const m = new UserGroups();
    m.apply('chat', { op: 'join', group: 'g', who: { kind: 'connection', name: 'c1' } });
    m.apply('chat', { op: 'leaveAll', who: { kind: 'group', name: 'g' } });
    m.apply('chat', { op: 'joinFiltered', groups: ['g'], filter: "userId eq 'u'" });
    m.apply('chat', { op: 'send', to: user('u'), dataType: 'text' });
    expect(m.size).toBe(0);
    expect([...m.entries()]).toEqual([]);
  });

  it('is replaced by a load, and lists its entries', () => {
    const m = new UserGroups();
    m.apply('chat', join('old', 'x'));
    m.replace([
      { hub: 'chat', userId: 'u', group: 'a' },
      { hub: 'chat', userId: 'u', group: 'a' },
      { hub: 'h2', userId: 'v', group: 'b' },
    ]);
    expect([...m.entries()]).toEqual([
      { hub: 'chat', userId: 'u', group: 'a' },
      { hub: 'h2', userId: 'v', group: 'b' },
    ]);
    expect(m.size).toBe(2);
    m.remove('chat', 'u', 'a');
    m.removeUser('h2', 'v');
    m.remove('nope', 'u', 'a');
    expect(m.size).toBe(0);
  });
});

describe('UserGroupsLoad', () => {
  function fixture(rows: UserGroup[]) {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const store: Pick<AzureUserGroupRepository, 'list'> = { list: async () => (await gate, rows) };
    const sent: AzureToEdge[] = [];
    const load = new UserGroupsLoad(store as AzureUserGroupRepository, (m) => sent.push(m), pino({ level: 'silent' }));
    return { load, sent, release };
  }

  it('applies the commands heard during the read over what the store returned, then sends it once', async () => {
    const { load, sent, release } = fixture([
      { hub: 'chat', userId: 'u', group: 'a' },
      { hub: 'chat', userId: 'u', group: 'b' },
    ]);
    const done = load.load();
    // heard while the read is under way: a remove the read may still have seen, and an add
    load.heard({ t: 'azure', hub: 'chat', command: leave('a', 'u'), message: null });
    load.heard({ t: 'azure', hub: 'chat', command: join('c', 'w'), message: null });
    release();
    await done;
    await load.ready;
    expect(sent).toEqual([
      {
        t: 'azure-user-groups',
        entries: [
          { hub: 'chat', userId: 'u', group: 'b' },
          { hub: 'chat', userId: 'w', group: 'c' },
        ],
      },
    ]);
    load.heard({ t: 'azure', hub: 'chat', command: join('d', 'w'), message: null }); // after: the edges keep it themselves
    expect(sent).toHaveLength(1);
  });

  it('a newer read supersedes an older one that ends later', async () => {
    const first = fixture([{ hub: 'chat', userId: 'u', group: 'old' }]);
    const older = first.load.load();
    const newer = first.load.load();
    first.release();
    await Promise.all([older, newer]);
    expect(first.sent).toHaveLength(1);
  });
});
