/**
 * The Azure Web PubSub and trip pieces on their own: OData filters, the reliable frame splice, the
 * handover of a reliable session between two edge threads' hubs (in order, nothing twice),
 * client frame checks, the trip state machine and its 1 MB bound (real SQLite in a temp dir), and the
 * outbound sender against a local HTTP server standing in for the real Azure service (which cannot
 * run here), with the official @azure/web-pubsub client doing the sending.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseClientRequest } from '../../src/features/azure/client-requests.js';
import { checkPayload, decodeAzureMessage, encodeAzureMessage, parseAzureCommand } from '../../src/features/azure/commands.js';
import { renderMessage, sequenceInto } from '../../src/features/azure/frames.js';
import { compileFilter } from '../../src/features/azure/odata-filter.js';
import { AzureOutbound } from '../../src/features/azure/ingest/azure-outbound.js';
import { AzureSessions } from '../../src/features/azure/edge/azure-sessions.js';
import type { AzureSessionState } from '../../src/features/azure/edge/azure-connection.js';
import type { AzurePresence } from '../../src/features/azure/messages.js';
import { SharedStats } from '../../src/metrics/shared-stats.js';
import { openDatabase } from '../../src/store/database.js';
import { TripStore } from '../../src/features/trips/store/trip-store.js';

const subject = (id: string, userId: string | null, groups: string[]) => ({ id, userId, groups: new Set(groups) });

describe('OData filters', () => {
  it('select connections by user, id and groups, with functions and precedence', () => {
    const ana = subject('c1', 'ana', ['g1', 'g2']);
    const bob = subject('c2', 'bob', []);
    const cases: [string, boolean, boolean][] = [
      ["userId eq 'ana'", true, false],
      ["userId ne 'ana'", false, true],
      ["'g1' in groups", true, false],
      ["userId in ('ana', 'zoe') or connectionId eq 'c2'", true, true],
      ["not ('g1' in groups) and length(groups) eq 0", false, true],
      ["startswith(tolower(UserId), 'AN') eq false", true, true],
      ["startswith(userId, 'an')", true, false],
      ["contains(userId, 'o') or userId eq 'x' and false", false, true],
      ['length(groups) ge 2', true, false],
      ["substring(connectionId, 1) eq '1'", true, false],
      ["userId eq 'it''s'", false, false],
    ];
    for (const [text, a, b] of cases) {
      const p = compileFilter(text);
      expect([p(ana), p(bob)], text).toEqual([a, b]);
    }
    for (const bad of ["userId eq 'x", 'userId eq', 'color eq 1', "userId eq 'a' )", 'tolower()', '$']) {
      expect(() => compileFilter(bad), bad).toThrow(/Invalid filter/);
    }
  });
});

describe('frames and requests', () => {
  it('splices the sequenceId into the rendered bytes, growing the scratch buffer when needed', () => {
    const message = renderMessage('g', 'json', Buffer.from('{"big":"' + 'x'.repeat(200) + '"}'), 'u1');
    const scratch = { buffer: Buffer.alloc(8) };
    const frame = JSON.parse(sequenceInto(scratch, 42, message.pubsub).toString());
    expect(frame).toEqual({ sequenceId: 42, type: 'message', from: 'group', group: 'g', dataType: 'json', data: { big: 'x'.repeat(200) }, fromUserId: 'u1' });
    expect(renderMessage(null, 'binary', Buffer.from([1, 2]), null).raw).toEqual(Uint8Array.from([1, 2]));
  });

  it('checks client frames and bus commands, naming what is wrong', () => {
    expect(parseClientRequest(Buffer.from('{"type":"sendToGroup","group":"g","data":{"a":1},"ackId":3}'))).toEqual({
      type: 'sendToGroup',
      group: 'g',
      ackId: 3,
      noEcho: false,
      dataType: 'json',
      data: '{"a":1}',
    });
    expect(() => parseClientRequest(Buffer.from('{"type":"joinGroup","group":"   "}'))).toThrow(/group/);
    expect(() => parseClientRequest(Buffer.from('{"type":"event","event":"a/b","data":1}'))).toThrow(/event/);
    expect(() => parseClientRequest(Buffer.from('{"type":"sendToGroup","group":"g","dataType":"text","data":1}'))).toThrow(/string/);
    expect(() => parseClientRequest(Buffer.from('{"type":"joinGroup","group":"g","ackId":-1}'))).toThrow(/ackId/);
    expect(() => parseAzureCommand({ op: 'send', to: { kind: 'planet' }, dataType: 'json', data: '1' })).toThrow(/kind/);
    expect(() => parseAzureCommand({ op: 'grant', connectionId: 'c', permission: 'fly' })).toThrow(/permission/);
    // On the bus a send is its command line, then the payload's bytes as they came.
    const send = { op: 'send', to: { kind: 'group', name: 'g' }, dataType: 'binary' } as const;
    const decoded = decodeAzureMessage(Buffer.from(encodeAzureMessage(send, Uint8Array.from([10, 0, 255]))), 64);
    expect(decoded.command).toMatchObject(send);
    expect([...decoded.payload]).toEqual([10, 0, 255]);
    expect(() => decodeAzureMessage(Buffer.from(JSON.stringify(send)), 64)).toThrow(/payload/);
    expect(() => checkPayload('json', Buffer.from('{"a":'), 64)).toThrow(/not valid JSON/);
    expect(() => checkPayload('text', Buffer.from([0xff, 0xfe]), 64)).toThrow(/UTF-8/);
  });
});

describe('the trip store', () => {
  const store = () => {
    const dir = mkdtempSync(join(tmpdir(), 'trips-'));
    const db = openDatabase(dir);
    onTestFinished(() => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const trips = new TripStore(db, 64);
    trips.saveEquipment([{ code: 'CAM-1', kind: 'truck', active: true, description: null }]);
    return { db, trips };
  };

  it('refuses a step whose event would be over 1 MB, writing nothing', () => {
    const { db, trips } = store();
    const outbox = () => (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
    expect(() => trips.step('crear', { equipo: 'CAM-1', patente: 'X', conductor: 'é'.repeat(600_000) })).toThrow(/Message Too Large/);
    expect(outbox()).toBe(0);
    expect(trips.trips(0, 10)).toEqual([]);
    const { body } = trips.step('crear', { equipo: 'CAM-1', patente: 'X' });
    expect(outbox()).toBe(1);
    expect(trips.step('actualizar', { id_movimiento: body.id, patente: 'X' }).wroteEvent).toBe(false); // nothing changed
    expect(() => trips.step('en-descarga', { id_movimiento: body.id })).toThrow(/creado: en-descarga is allowed only from carga_finalizada/);
    expect(outbox()).toBe(1);
  });
});

describe('outbound to a real Azure Web PubSub service', () => {
  it('sends trip events in order with the official SDK, retries with backoff, and refuses over 1 MB', async () => {
    const received: { path: string; body: string }[] = [];
    let failures = 2;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        if (failures-- > 0) {
          res.writeHead(503).end();
          return;
        }
        received.push({ path: req.url!.split('?')[0], body });
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
    const stats = SharedStats.create(1);
    const outbound = new AzureOutbound(
      `Endpoint=http://127.0.0.1:${(server.address() as AddressInfo).port};AccessKey=${'k'.repeat(40)};Version=1.0;`,
      stats.ingestWriter(),
      pino({ level: 'silent' }),
    );
    onTestFinished(() => outbound.stop());
    outbound.send('extraccion', ['excavadoras'], { data: 'ViajeCreado', n: 1 });
    outbound.send('extraccion', ['excavadoras'], { data: 'x'.repeat(1024 * 1024) });
    outbound.send('extraccion', ['excavadoras', 'camiones'], { data: 'ViajeCancelado', n: 2 });
    const deadline = Date.now() + 10_000;
    // Done when the sender has counted both sends: the server sees a request before its 202 reaches the
    // sender, so `received` alone can be complete while trip_outbound_sent_total still says 1 (seen in CI).
    const done = () => received.length >= 3 && stats.getIngest('trip_outbound_sent_total') >= 2;
    while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const sent = received.map((r) => `${r.path} ${JSON.parse(r.body).n}`);
    expect(sent[0]).toBe('/api/hubs/extraccion/groups/excavadoras/:send 1'); // in order, after two refusals
    expect(sent.slice(1).sort()).toEqual(['/api/hubs/extraccion/groups/camiones/:send 2', '/api/hubs/extraccion/groups/excavadoras/:send 2']);
    expect(received).toHaveLength(3);
    expect(stats.getIngest('trip_outbound_retries_total')).toBe(2);
    expect(stats.getIngest('trip_outbound_failed_total')).toBe(1); // the 1 MB one, never sent
    expect(stats.getIngest('trip_outbound_sent_total')).toBe(2);
  }, 20_000);
});

describe('reliable session handover between edge threads', () => {
  // Two edge threads' AzureSessions in one process, driven in the order ingest's ports guarantee.
  const edge = (stats: SharedStats, index: number, presence: { hub: string; change: AzurePresence }[] = []) => {
    const hub = new AzureSessions({
      app: { publish: () => false },
      sessionTtlMs: 60_000,
      maxBufferBytes: 1 << 20,
      presence: (h, change) => presence.push({ hub: h, change }),
      stats: stats.edgeWriter(index),
      logger: pino({ level: 'silent' }),
    });
    onTestFinished(() => hub.closeAll('test over'));
    return hub;
  };
  const message = (n: number) => renderMessage('g', 'json', Buffer.from(JSON.stringify({ n })), null);
  const send = { op: 'send', to: { kind: 'group', name: 'g' }, dataType: 'json' } as const;
  const state: AzureSessionState = {
    id: 'c1',
    hub: 'chat',
    userId: 'u',
    roles: [],
    groups: ['g'],
    reconnectionToken: 'tok',
    lastSeq: 0,
    unacked: [],
    ackIds: [7],
  };
  const seqs = (conn: { unacked: readonly { seq: number; pubsub: Uint8Array }[] }) =>
    conn.unacked.map((e) => [e.seq, JSON.parse(Buffer.from(e.pubsub).toString()).data.n]);

  it('the new thread gets the queue, then what the owner no longer saw, each once and numbered on', () => {
    const stats = SharedStats.create(2);
    const a = edge(stats, 0);
    const b = edge(stats, 1);
    a.expectHandover(1, 'chat');
    const owned = a.adopt(1, state)!; // a session on thread A, detached (its socket dropped)
    for (const n of [1, 2]) {
      a.apply('chat', send, message(n));
      b.apply('chat', send, message(n)); // B has no member: nothing to deliver, nothing held
    }
    expect(seqs(owned)).toEqual([
      [1, 1],
      [2, 2],
    ]);

    // The client resumes on B. Ingest tells B `start` and asks A, then broadcasts 3 and 4.
    b.expectHandover(9, 'chat');
    const crossing = a.handOver('chat', 'c1', 'tok')!;
    expect(a.session('chat', 'c1', 'tok')).toBeNull();
    const tripEvent = { azure: { hub: 'chat', writtenAt: Date.now(), groups: [{ group: 'g', message: message(30) }] } } as never;
    for (const n of [3, 30, 4]) {
      for (const hub of [a, b]) {
        if (n === 30)
          hub.deliverChannelEvent(tripEvent); // a trip event, between two commands
        else hub.apply('chat', send, message(n));
      }
    }
    const taken = b.adopt(9, crossing)!;
    expect(seqs(taken)).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 30],
      [5, 4],
    ]);
    expect(taken.firstTime(7)).toBe(false); // ack ids processed on A stay processed
    expect(b.session('chat', 'c1', 'tok')).toBe(taken);
    b.apply('chat', send, message(5));
    expect(seqs(taken).at(-1)).toEqual([6, 5]);
    expect(seqs(owned)).toEqual([
      [1, 1],
      [2, 2],
    ]); // A delivered nothing after handing over
    expect(stats.sumEdges('azure_sessions_handed_over_total')).toBe(2);
    expect(stats.sumEdges('azure_sessions_detached')).toBe(1);
  });

  it('a wrong token hands nothing over, and a session closed while crossing ends on arrival', () => {
    const stats = SharedStats.create(2);
    const presence: { hub: string; change: AzurePresence }[] = [];
    const a = edge(stats, 0);
    const b = edge(stats, 1, presence);
    a.expectHandover(1, 'chat');
    a.adopt(1, state);
    expect(a.handOver('chat', 'c1', 'not-the-token')).toBeNull();
    b.expectHandover(2, 'chat');
    const crossing = a.handOver('chat', 'c1', 'tok')!;
    b.apply('chat', { op: 'close', who: { kind: 'connection', name: 'c1' } } as never, null);
    expect(b.adopt(2, crossing)).toBeNull();
    expect(b.session('chat', 'c1', 'tok')).toBeNull();
    expect(presence).toEqual([{ hub: 'chat', change: { op: 'close', id: 'c1' } }]);
    expect(b.adopt(3, null)).toBeNull();
  });
});
