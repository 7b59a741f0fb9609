/**
 * The cluster-wide Azure directory on its own: two nodes' presence objects wired back to back (what
 * one publishes, the other receives, as the bus would carry it), with a hand-driven clock. A
 * snapshot replaces a node's members, a change after it applies, a node silent for the TTL expires
 * and its late messages do not bring it back, own messages coming back are ignored, malformed ones
 * are counted and dropped, and a snapshot over the chunk bound arrives in parts.
 */
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { AzureClusterPresence, PRESENCE_CHUNK_BYTES } from '../../src/features/azure/ingest/azure-cluster-presence.js';
import { AzurePipeline } from '../../src/features/azure/ingest/azure-pipeline.js';
import type { AzurePresence } from '../../src/features/azure/messages.js';
import { SharedStats } from '../../src/metrics/shared-stats.js';

const HUB = 'chat';

function node(id: string, clock: { t: number }, snapshotMs = 5000) {
  const stats = SharedStats.create(1).ingestWriter();
  const pipeline = new AzurePipeline(null, 32, () => undefined, stats, pino({ level: 'silent' }));
  const sent: string[] = [];
  const presence = new AzureClusterPresence(pipeline, {
    nodeId: id,
    snapshotMs,
    ttlMs: 15_000,
    publish: (payload) => sent.push(payload),
    subscribed: () => true,
    stats,
    logger: pino({ level: 'silent' }),
    now: () => clock.t,
  });
  onTestFinished(() => presence.stop());
  /** An edge of this node reports a change. */
  const local = (change: AzurePresence) => {
    pipeline.presence(HUB, change);
    presence.local(HUB, change);
  };
  /** Hands what this node published to `to` (and forgets it). */
  const deliver = (...to: AzureClusterPresence[]) => {
    const out = sent.splice(0);
    for (const payload of out) for (const p of to) p.receive(Buffer.from(payload));
    return out;
  };
  const has = (kind: 'connection' | 'group' | 'user', name: string) => pipeline.query(HUB, { kind, name }) === true;
  return { id, pipeline, presence, stats, sent, local, deliver, has };
}

const open = (id: string, userId: string | null, groups: string[] = []): AzurePresence => ({ op: 'open', id, userId, roles: [], groups });

describe('Azure presence across nodes', () => {
  it('GATEWAY_AZURE_PRESENCE_SNAPSHOT_MS=0: publishes nothing and takes nothing, the directory is its own', () => {
    const clock = { t: 1000 };
    const a = node('node-a', clock, 0);
    const b = node('node-b', clock);
    a.presence.start();
    a.local(open('a1', 'alice', ['g1']));
    a.presence.subscribed();
    a.presence.publishSnapshot();
    a.presence.flush();
    expect(a.sent).toEqual([]);
    expect(a.has('connection', 'a1')).toBe(true);
    b.local(open('b1', 'bob'));
    b.presence.publishSnapshot();
    b.deliver(a.presence);
    expect(a.has('connection', 'b1') || a.has('user', 'bob')).toBe(false);
    expect(a.pipeline.remoteConnections).toBe(0);
  });

  it('merges a snapshot, the changes after it, and replaces with the next snapshot', () => {
    const clock = { t: 1000 };
    const a = node('node-a', clock);
    const b = node('node-b', clock);
    b.local(open('c1', 'alice', ['g1']));
    b.local(open('c2', 'bob'));
    b.presence.publishSnapshot(); // flushes the changes first, then the snapshot
    b.deliver(a.presence);
    expect(a.has('connection', 'c1') && a.has('connection', 'c2') && a.has('user', 'alice') && a.has('group', 'g1')).toBe(true);
    expect(a.pipeline.remoteConnections).toBe(2);

    b.local({ op: 'join', id: 'c2', group: 'g2' });
    b.local({ op: 'close', id: 'c1' });
    b.presence.flush();
    b.deliver(a.presence);
    expect(a.has('connection', 'c1')).toBe(false);
    expect(a.has('group', 'g1')).toBe(false);
    expect(a.has('group', 'g2')).toBe(true);

    // a change lost on the way: the next snapshot heals it
    b.local(open('c3', 'carol'));
    b.presence.flush();
    b.sent.splice(0);
    expect(a.has('connection', 'c3')).toBe(false);
    b.presence.publishSnapshot();
    b.deliver(a.presence);
    expect(a.has('connection', 'c3') && a.has('connection', 'c2') && !a.has('connection', 'c1')).toBe(true);
    // a snapshot replaces: a remote member B no longer reports is gone
    b.pipeline.presence(HUB, { op: 'close', id: 'c2' });
    b.presence.publishSnapshot();
    b.deliver(a.presence);
    expect(a.has('connection', 'c2')).toBe(false);
    expect(a.pipeline.remoteConnections).toBe(1);
    // A's own connections are not in what A publishes as remote, and A's local users stay A's
    a.local(open('a1', 'dave'));
    expect(a.pipeline.localUsers(HUB)).toEqual(['dave']);
    expect(a.stats.get('azure_presence_rejected_total')).toBe(0);
  });

  it('expires a silent node, and its late messages do not bring it back; a newer snapshot does', () => {
    const clock = { t: 1000 };
    const a = node('node-a', clock);
    const b = node('node-b', clock);
    b.local(open('c1', 'alice'));
    b.presence.publishSnapshot();
    b.deliver(a.presence);
    expect(a.has('connection', 'c1')).toBe(true);
    // a message B sent before it died, held by the bus
    b.local(open('late', 'erin'));
    b.presence.flush();
    const late = b.sent.splice(0);
    const oldSnapshot = (b.presence.publishSnapshot(), b.sent.splice(0));

    clock.t += 14_000;
    a.presence.expire();
    expect(a.has('connection', 'c1')).toBe(true);
    clock.t += 2000;
    a.presence.expire();
    expect(a.has('connection', 'c1')).toBe(false);
    expect(a.stats.get('azure_presence_expired_total')).toBe(1);
    expect(a.presence.liveNodes).toEqual([]);

    for (const payload of [...late]) a.presence.receive(Buffer.from(payload));
    expect(a.has('connection', 'late')).toBe(false);
    expect(a.pipeline.remoteConnections).toBe(0);

    // the last snapshot seen is older than the delayed one: that one revives B (it was alive then)…
    for (const payload of oldSnapshot) a.presence.receive(Buffer.from(payload));
    expect(a.has('connection', 'late')).toBe(true);
    clock.t += 16_000;
    a.presence.expire();
    // …but the same snapshot again does not
    for (const payload of oldSnapshot) a.presence.receive(Buffer.from(payload));
    expect(a.has('connection', 'late')).toBe(false);
    // B alive after all: its next snapshot brings it back
    b.presence.publishSnapshot();
    b.deliver(a.presence);
    expect(a.has('connection', 'c1') && a.has('connection', 'late')).toBe(true);
  });

  it('ignores its own messages and counts and drops malformed ones', () => {
    const clock = { t: 1000 };
    const a = node('node-a', clock);
    a.local(open('a1', 'alice'));
    a.presence.publishSnapshot();
    a.deliver(a.presence);
    expect(a.pipeline.remoteConnections).toBe(0);
    expect(a.has('connection', 'a1')).toBe(true);
    expect(a.stats.get('azure_presence_received_total')).toBe(0);

    const bad = [
      'not json',
      '[1,2]',
      '{"v":2,"kind":"changes","node":"x","boot":"b","seq":1,"changes":[]}',
      '{"v":1,"kind":"changes","boot":"b","seq":1,"changes":[]}',
      '{"v":1,"kind":"changes","node":"x","boot":"b","seq":-1,"changes":[]}',
      '{"v":1,"kind":"changes","node":"x","boot":"b","seq":1,"changes":[{"hub":"chat","op":"explode","id":"c"}]}',
      '{"v":1,"kind":"changes","node":"x","boot":"b","seq":1,"changes":[{"hub":"chat","op":"join","id":"c","group":""}]}',
      '{"v":1,"kind":"snapshot","node":"x","boot":"b","gen":1,"part":1,"parts":1,"members":[]}',
      '{"v":1,"kind":"snapshot","node":"x","boot":"b","gen":1,"part":0,"parts":1,"members":[{"hub":"chat","id":"c","userId":5,"roles":[],"groups":[]}]}',
      '{"v":1,"kind":"whatever","node":"x","boot":"b"}',
      '{"v":1,"kind":"changes","node":"x","boot":"b","seq":1,"changes":[],"__proto__":{}}',
    ];
    for (const text of bad) a.presence.receive(Buffer.from(text));
    expect(a.stats.get('azure_presence_rejected_total')).toBe(bad.length);
    expect(a.pipeline.remoteConnections).toBe(0);
    expect(a.presence.liveNodes).toEqual([]);
  });

  it('sends a snapshot over the chunk bound in parts, applied once all are in', () => {
    const clock = { t: 1000 };
    const a = node('node-a', clock);
    const b = node('node-b', clock);
    const groups = Array.from({ length: 20 }, (_, i) => `group-with-a-longish-name-${i}`);
    for (let i = 0; i < 1500; i++) b.pipeline.presence(HUB, open(`connection-${i}`, `user-${i}`, groups));
    b.presence.publishSnapshot();
    const parts = b.sent.splice(0);
    expect(parts.length).toBeGreaterThan(3);
    for (const p of parts) expect(Buffer.byteLength(p)).toBeLessThan(PRESENCE_CHUNK_BYTES);
    for (const p of parts.slice(0, -1)) a.presence.receive(Buffer.from(p));
    expect(a.pipeline.remoteConnections).toBe(0);
    a.presence.receive(Buffer.from(parts.at(-1)!));
    expect(a.pipeline.remoteConnections).toBe(1500);
    expect(a.has('group', 'group-with-a-longish-name-7')).toBe(true);
  });

  it('applies bus membership commands to remote members, and a new node is answered with a snapshot', async () => {
    const clock = { t: 1000 };
    const a = node('node-a', clock);
    const b = node('node-b', clock);
    b.local(open('c1', 'alice'));
    b.presence.flush();
    b.deliver(a.presence);
    // A had never heard of B: it publishes its own snapshot soon after
    await new Promise((r) => setTimeout(r, 150));
    expect(a.sent.some((p) => p.includes('"kind":"snapshot"'))).toBe(true);
    a.pipeline.handle(HUB, Buffer.from(JSON.stringify({ op: 'join', group: 'g', who: { kind: 'user', name: 'alice' } })));
    expect(a.has('group', 'g')).toBe(true);
  });
});
