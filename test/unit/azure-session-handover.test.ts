/**
 * The ordering of a reliable session's handover across nodes (docs/design/cluster-presence.md §2):
 * the stamps on the commands, each thread's positions, the asker's hold dropping what the owner
 * applied, the owner's wait until it caught up (and its timeout); and, on ingest, the handover
 * topic's messages: the question and answer, the reservation against a second owner, the bound on
 * the state, the asker's timeout and hostile input.
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeAzureMessage, encodeAzureMessage, type AzureCommand } from '../../src/features/azure/commands.js';
import type { AzureSessionState } from '../../src/features/azure/edge/azure-connection.js';
import { CATCH_UP_MS, SessionHandover, stampingPublish, type Held } from '../../src/features/azure/edge/azure-session-handover.js';
import { AzureRemoteHandovers, HANDOVER_TIMEOUT_MS, MAX_HANDOVER_BYTES } from '../../src/features/azure/ingest/azure-remote-handovers.js';
import type { AzureToEdge, Positions } from '../../src/features/azure/messages.js';
import { SharedStats } from '../../src/metrics/shared-stats.js';

const silent = pino({ level: 'silent' });
const join = (n: number): AzureCommand => ({ op: 'join', group: `g${n}`, who: { kind: 'connection', name: 'c' } });
const cmd = (p: string, s: number): Held => ({ command: join(s), message: null, stamp: { p, s } });
const event = (channel: string, offset: number): Held => ({ event: { channel, offset } as never });
const label = (h: Held) => ('event' in h ? `${h.event.channel}@${h.event.offset}` : h.stamp === undefined ? 'unstamped' : `${h.stamp.p}#${h.stamp.s}`);

afterEach(() => vi.useRealTimers());

describe('command stamps', () => {
  it('each thread stamps its commands per hub, in order; other topics pass as they are', () => {
    const out: [string, Uint8Array | string][] = [];
    const publish = stampingPublish('gateway/azure', (topic, payload) => out.push([topic, payload]));
    publish('gateway/azure/chat', encodeAzureMessage(join(1)));
    publish('gateway/azure/chat', encodeAzureMessage({ op: 'send', to: { kind: 'all' }, dataType: 'text' }, 'hi\nthere'));
    publish('gateway/azure/other', encodeAzureMessage(join(2)));
    publish('gateway/azure/chat/events/message', '{"x":1}');
    const decoded = out.slice(0, 3).map(([, p]) => decodeAzureMessage(Buffer.from(p), 64));
    expect(decoded.map((d) => d.stamp?.s)).toEqual([1, 2, 1]);
    expect(new Set(decoded.map((d) => d.stamp?.p)).size).toBe(1);
    expect(decoded[0].command).toEqual(join(1));
    expect(decoded[1].payload.toString()).toBe('hi\nthere');
    expect(out[3][1]).toBe('{"x":1}');
    // another thread is another publisher
    const other: Uint8Array[] = [];
    stampingPublish('gateway/azure', (_, p) => other.push(p as Uint8Array))('gateway/azure/chat', encodeAzureMessage(join(1)));
    expect(decodeAzureMessage(Buffer.from(other[0]), 64).stamp?.p).not.toBe(decoded[0].stamp?.p);
    // a stamp that is not one is ignored, the command still taken
    expect(decodeAzureMessage(Buffer.from('{"stamp":{"p":"x","s":-1},"op":"leaveAll","who":{"kind":"all"}}'), 64).stamp).toBeUndefined();
  });
});

describe('SessionHandover', () => {
  const stats = () => SharedStats.create(1).edgeWriter(0);

  it('positions: the highest stamp per publisher and offset per channel, per hub', () => {
    const h = new SessionHandover(stats(), silent);
    for (const held of [cmd('p', 1), cmd('p', 2), cmd('q', 7), event('trips', 4), { command: join(9), message: null }]) h.arrived('chat', held);
    h.arrived('other', cmd('p', 40));
    expect(h.positionsOf('chat')).toEqual([
      ['p', 2],
      ['q', 7],
      ['c:trips', 4],
    ]);
    expect(
      h.missing('chat', [
        ['p', 3],
        ['q', 7],
        ['r', 1],
      ]),
    ).toEqual([
      ['p', 3],
      ['r', 1],
    ]);
  });

  it("the asker's hold: what is at or below the owner's positions is dropped, the rest replayed in order", () => {
    const h = new SessionHandover(stats(), silent);
    h.arrived('chat', cmd('p', 1)); // before the question: not held
    h.expect(1, 'chat');
    for (const held of [cmd('p', 2), cmd('q', 1), event('trips', 5), { command: join(0), message: null }, cmd('p', 3), cmd('q', 2), event('trips', 6)])
      h.arrived('chat', held);
    h.arrived('other', cmd('p', 9)); // another hub: not held
    const owner: Positions = [
      ['p', 2],
      ['q', 2],
      ['c:trips', 5],
    ];
    expect(h.release(1, owner).map(label)).toEqual(['unstamped', 'p#3', 'trips@6']);
    expect(h.release(1, owner)).toEqual([]); // released once
  });

  it('one node (no positions): everything held is replayed', () => {
    const h = new SessionHandover(stats(), silent);
    h.expect(2, 'chat');
    h.arrived('chat', cmd('p', 1));
    expect(h.release(2).map(label)).toEqual(['p#1']);
  });

  it('the owner waits until it applied what the asker had, then hands over', () => {
    const h = new SessionHandover(stats(), silent);
    const ran: boolean[] = [];
    h.arrived('chat', cmd('p', 1));
    h.applied('chat');
    h.whenCaughtUp('chat', [['p', 1]], (timedOut) => ran.push(timedOut));
    expect(ran).toEqual([false]); // caught up already: at once
    h.whenCaughtUp(
      'chat',
      [
        ['p', 3],
        ['c:trips', 2],
      ],
      (timedOut) => ran.push(timedOut),
    );
    h.arrived('chat', cmd('p', 2));
    h.applied('chat');
    h.arrived('chat', cmd('p', 3));
    h.applied('chat');
    expect(ran).toHaveLength(1); // the channel is not there yet
    h.arrived('chat', event('trips', 2));
    expect(ran).toHaveLength(1); // arrived, not yet applied
    h.applied('chat');
    expect(ran).toEqual([false, false]);
  });

  it('gives up after CATCH_UP_MS, counted', () => {
    vi.useFakeTimers();
    const row = stats();
    const h = new SessionHandover(row, silent);
    const ran: boolean[] = [];
    h.whenCaughtUp('chat', [['p', 5]], (timedOut) => ran.push(timedOut));
    vi.advanceTimersByTime(CATCH_UP_MS - 1);
    expect(ran).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ran).toEqual([true]);
    expect(row.get('azure_handover_catchup_timeouts_total')).toBe(1);
    h.arrived('chat', cmd('p', 5));
    h.applied('chat');
    expect(ran).toEqual([true]); // once
  });
});

const session = (over: Partial<AzureSessionState> = {}): AzureSessionState => ({
  id: 'conn-1',
  hub: 'chat',
  userId: 'rosa',
  roles: ['webpubsub.joinLeaveGroup'],
  groups: ['room'],
  reconnectionToken: 'tok',
  lastSeq: 12,
  unacked: [{ seq: 12, pubsub: new Uint8Array(Buffer.from('{"type":"message"}')) }],
  ackIds: [1, 2],
  upstream: { state: null, subprotocol: 'json.reliable.webpubsub.azure.v1' },
  ...over,
});

/** Two nodes' handover halves joined by a fake bus (synchronous, tagged already). */
function pair(options: { ownerHas?: AzureSessionState | null } = {}) {
  const bus: { topic: string; payload: string }[] = [];
  const toEdge: { node: string; edge: number; message: AzureToEdge }[] = [];
  const moved: string[] = [];
  const make = (nodeId: string, owner: AzureSessionState | null) => {
    const stats = SharedStats.create(1).ingestWriter();
    const remote = new AzureRemoteHandovers({
      nodeId,
      topicOf: (node) => `p/handover/${node}`,
      publish: (topic, payload) => bus.push({ topic, payload }),
      nodeOf: (_, id) => (id === 'conn-1' && nodeId === 'B' ? 'A' : undefined),
      send: (edge, message) => toEdge.push({ node: nodeId, edge, message }),
      askOwner: (_hub, id, token, positions, answered) => {
        if (owner === null) return false;
        moved.push(`${nodeId} asks its edge for ${id} at ${JSON.stringify(positions)}`);
        answered(owner.reconnectionToken === token ? owner : null, [['p', 9]]);
        return true;
      },
      moved: { away: (s, node) => moved.push(`${s.id} away to ${node}`), here: (s, edge) => moved.push(`${s.id} here on edge ${edge}`) },
      reserveMs: 15_000,
      stats,
      logger: silent,
    });
    return { remote, stats };
  };
  const a = make('A', options.ownerHas === undefined ? session() : options.ownerHas);
  const b = make('B', null);
  /** Delivers what is on the bus to its node. */
  const flush = () => {
    while (bus.length > 0) {
      const { topic, payload } = bus.shift()!;
      (topic.endsWith('/A') ? a : b).remote.receive(Buffer.from(payload));
    }
  };
  return { a, b, bus, toEdge, moved, flush };
}

describe('AzureRemoteHandovers', () => {
  it("B asks A with its positions; A's owner answers; B's edge gets the session and A's positions; a second ask is refused", () => {
    const { a, b, toEdge, moved, flush } = pair();
    expect(b.remote.ask(0, 7, 'chat', 'conn-1', 'tok')).toBe(true);
    expect(toEdge).toEqual([{ node: 'B', edge: 0, message: { t: 'azure-handover-start', id: 7, hub: 'chat', remote: true } }]);
    b.remote.positions(0, 7, [['q', 3]]);
    flush();
    expect(moved).toEqual(['A asks its edge for conn-1 at [["q",3]]', 'conn-1 away to B', 'conn-1 here on edge 0']);
    const answer = toEdge[1].message as Extract<AzureToEdge, { t: 'azure-handover' }>;
    expect(answer).toMatchObject({ t: 'azure-handover', id: 7, positions: [['p', 9]] });
    expect(answer.session).toEqual(session());
    expect(b.stats.get('azure_remote_handovers_total')).toBe(1);
    expect(a.stats.get('azure_remote_handovers_served_total')).toBe(1);

    // another node (or B again) asks for the same connection: A refuses a second owner
    expect(b.remote.ask(1, 8, 'chat', 'conn-1', 'tok')).toBe(true);
    b.remote.positions(1, 8, []);
    flush();
    expect(toEdge.at(-1)!.message).toMatchObject({ t: 'azure-handover', id: 8, session: null });
    expect(moved).toHaveLength(3); // its edge was not asked
    expect(b.stats.get('azure_remote_handover_failures_total')).toBe(1);
  });

  it('unknown in the cluster: not taken (null at once by the caller)', () => {
    const { b } = pair();
    expect(b.remote.ask(0, 1, 'chat', 'conn-2', 'tok')).toBe(false);
  });

  it('the wrong token or no such session on A: null', () => {
    const { b, toEdge, flush } = pair();
    b.remote.ask(0, 1, 'chat', 'conn-1', 'wrong');
    b.remote.positions(0, 1, []);
    flush();
    expect(toEdge.at(-1)!.message).toMatchObject({ t: 'azure-handover', id: 1, session: null });
  });

  it('a state over the bound is not sent: null, counted on A', () => {
    const big = session({ unacked: [{ seq: 1, pubsub: new Uint8Array(MAX_HANDOVER_BYTES) }] });
    const { a, b, toEdge, flush } = pair({ ownerHas: big });
    b.remote.ask(0, 1, 'chat', 'conn-1', 'tok');
    b.remote.positions(0, 1, []);
    flush();
    expect(toEdge.at(-1)!.message).toMatchObject({ t: 'azure-handover', id: 1, session: null });
    expect(a.stats.get('azure_remote_handover_failures_total')).toBe(1);
  });

  it('no answer in time: null to the edge, counted; a late answer is ignored', () => {
    vi.useFakeTimers();
    const { b, bus, toEdge, flush } = pair();
    b.remote.ask(0, 1, 'chat', 'conn-1', 'tok');
    b.remote.positions(0, 1, []);
    const ask = bus.splice(0);
    vi.advanceTimersByTime(HANDOVER_TIMEOUT_MS);
    expect(toEdge.at(-1)!.message).toEqual({ t: 'azure-handover', id: 1, session: null });
    expect(b.stats.get('azure_remote_handover_failures_total')).toBe(1);
    bus.push(...ask);
    flush();
    expect(toEdge).toHaveLength(2); // start, and the null
  });

  it('hostile input is dropped and counted, never thrown', () => {
    const { b, toEdge } = pair();
    b.remote.ask(0, 1, 'chat', 'conn-1', 'tok');
    const bad = [
      'not json',
      '[]',
      '{"v":2}',
      '{"v":1,"kind":"ask","from":"X","ref":"r"}',
      '{"v":1,"kind":"state","from":"A","ref":"r","positions":"no","session":null}',
      '{"v":1,"kind":"state","from":"A","ref":"r","positions":[],"session":{"id":"conn-1"}}',
      '{"v":1,"kind":"state","from":"A","ref":"r","positions":[["p",-1]],"session":null}',
      '{"v":1,"kind":"what","from":"A","ref":"r"}',
      '{"v":1,"kind":"ask","from":"X","ref":"r","__proto__":{}}',
      '['.repeat(100),
      `{"v":1,"kind":"ask","from":"X","ref":"r","pad":"${'x'.repeat(MAX_HANDOVER_BYTES)}"}`,
    ];
    for (const body of bad) b.remote.receive(Buffer.from(body));
    expect(b.stats.get('azure_remote_handover_rejected_total')).toBe(bad.length);
    expect(toEdge).toHaveLength(1); // the start only
  });
});
