/**
 * Issue 16, bullets 2 and 3 (docs/design/cluster-store.md §6.1): one shared store behind every node.
 * REST written on A is read, updated and deleted on B (entities, equipment, trips); ids come from
 * the store, unique under concurrent writers on both nodes; each event has the same offset and epoch
 * on A and on B.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken, connectChannel, isEvent, rest } from '../helpers/channels.js';
import { awaitKeys, events, expectConsecutive, startCluster, startWriters } from '../helpers/cluster.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

let postgres: Postgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

const negotiate = async (node: { http: string }, userId: string) => {
  const res = await fetch(`${node.http}/ws/negotiate?user_id=${encodeURIComponent(userId)}`);
  return { status: res.status, body: (await res.json()) as any };
};

describe('REST across nodes', { timeout: 60_000 }, () => {
  it('an entity created on A is read, listed, updated and deleted on B; both nodes subscribers see the three events', async () => {
    const cluster = await startCluster({ nodes: 2, postgres });
    const [a, b] = cluster.nodes;
    const token = await adminToken();
    const onA = await connectChannel(a, '/api/v1/ws?channel=sensors');
    const onB = await connectChannel(b, '/api/v1/ws?channel=sensors');

    const created = await rest(a, 'POST', '/api/v1/sensores/', { tipo: 'temperatura', modelo: 'DHT22' }, token);
    expect(created.status).toBe(201);
    const id = created.body.id as number;
    expect(await rest(b, 'GET', `/api/v1/sensores/${id}`, undefined, token)).toMatchObject({ status: 200, body: created.body });
    expect((await rest(b, 'GET', '/api/v1/sensores/', undefined, token)).body).toEqual([created.body]);

    const updated = await rest(b, 'PUT', `/api/v1/sensores/${id}`, { modelo: 'DHT11' }, token);
    expect(updated).toMatchObject({ status: 200, body: { id, modelo: 'DHT11', updated_fields: ['modelo'] } });
    expect((await rest(a, 'GET', `/api/v1/sensores/${id}`, undefined, token)).body).toMatchObject({ id, tipo: 'temperatura', modelo: 'DHT11' });

    expect(await rest(b, 'DELETE', `/api/v1/sensores/${id}`, undefined, token)).toMatchObject({ status: 200, body: { deleted: true, id } });
    expect((await rest(a, 'GET', `/api/v1/sensores/${id}`, undefined, token)).status).toBe(404);
    expect((await rest(a, 'PUT', `/api/v1/sensores/${id}`, { modelo: 'X' }, token)).body.error.code).toBe('GW_ERR_ENTITY_NOT_FOUND');

    for (const client of [onA, onB]) {
      await client.next((f) => isEvent(f) && (f as any).event_type === 'deleted');
      expect(events(client).map((f) => [f.event_type, f.entity_id, f.offset])).toEqual([
        ['created', id, 1],
        ['updated', id, 2],
        ['deleted', id, 3],
      ]);
    }
    expect(events(onA)[0].data).toEqual(created.body);
  });

  it('equipment added on A is known on B and negotiates there; removed on B, A refuses it; a trip created on A is stepped on B', async () => {
    const cluster = await startCluster({ nodes: 2, postgres });
    const [a, b] = cluster.nodes;
    const token = await adminToken();
    const trips = await connectChannel(a, '/api/v1/ws?channel=viajes');
    expect((await negotiate(b, 'CAM-201')).body.error.code).toBe('GW_ERR_EQUIPMENT_UNKNOWN');
    for (const [code, kind] of [
      ['CAM-201', 'truck'],
      ['EXC-201', 'excavator'],
      ['CAM-299', 'truck'],
    ])
      expect((await rest(a, 'PUT', `/api/v1/equipment/${code}`, { kind, active: true }, token)).status).toBe(200);
    expect(await rest(b, 'GET', '/api/v1/equipment/CAM-201', undefined, token)).toMatchObject({
      status: 200,
      body: { code: 'CAM-201', kind: 'truck', active: true },
    });
    expect(await negotiate(b, 'CAM-201')).toMatchObject({ status: 200, body: { url: expect.stringMatching(/^ws/) } });
    expect((await rest(b, 'DELETE', '/api/v1/equipment/CAM-299', undefined, token)).status).toBe(200);
    expect(await negotiate(a, 'CAM-299')).toMatchObject({ status: 404, body: { error: { code: 'GW_ERR_EQUIPMENT_UNKNOWN' } } });

    const created = await rest(a, 'POST', '/viaje/crear', { equipo: 'CAM-201', patente: 'ABCD12', id_jornada: 7 }, token);
    expect(created).toMatchObject({ status: 200, body: { id: expect.any(Number) } });
    const id = created.body.id as number;
    for (const [method, step, extra] of [
      ['PATCH', 'actualizar', { hora_carga: '2026-01-21T10:35:00' }],
      ['POST', 'finalizar-carga', { hora_fin_carga: '2026-01-21T10:45:00' }],
      ['POST', 'en-descarga', {}],
      ['POST', 'finalizar', {}],
    ] as const) {
      const reply = await rest(b, method, `/viaje/${step}`, { id_movimiento: id, ...extra }, token);
      expect(reply.status, `${step} on B: ${JSON.stringify(reply.body)}`).toBe(200);
    }
    expect((await rest(a, 'GET', `/viaje/${id}`, undefined, token)).body).toMatchObject({ IdMovimiento: id, estado: 'finalizado', Patente: 'ABCD12' });
    // A second trip, created on B, gets another id; stepping the first one again is refused on A.
    const second = await rest(b, 'POST', '/viaje/crear', { equipo: 'CAM-201', patente: 'EFGH34' }, token);
    expect(second.body.id).not.toBe(id);
    expect((await rest(a, 'POST', '/viaje/finalizar', { id_movimiento: id }, token)).body.error.code).toBe('GW_ERR_TRIP_TRANSITION');
    expect((await rest(a, 'GET', '/viaje', undefined, token)).body.map((t: any) => t.IdMovimiento).sort()).toEqual([id, second.body.id].sort());

    // The six events (five steps of the first trip, then the second's creation), on A, in order.
    await trips.next((f) => isEvent(f) && (f as any).offset === 6);
    const names = events(trips).map((f) =>
      ['ViajeCreado', 'ViajeActualizado', 'CargaFinalizada', 'ViajeEnDescarga', 'ViajeFinalizado'].find((n) => JSON.stringify(f).includes(`"${n}"`)),
    );
    expect(names).toEqual(['ViajeCreado', 'ViajeActualizado', 'CargaFinalizada', 'ViajeEnDescarga', 'ViajeFinalizado', 'ViajeCreado']);
    expectConsecutive(events(trips), 'viajes on A');
  });
});

describe('ids from the store', { timeout: 60_000 }, () => {
  it('2 nodes × 4 concurrent writers × 50 creates: every id distinct; every entity_id event on both nodes matches its entity; trips too', async () => {
    const cluster = await startCluster({ nodes: 2, postgres });
    const [a, b] = cluster.nodes;
    const token = await adminToken();
    const subscribers = [await connectChannel(a, '/api/v1/ws?channel=sensors'), await connectChannel(b, '/api/v1/ws?channel=sensors')];
    const perNode = 200;
    const writers = cluster.nodes.map((node) =>
      startWriters(node, '/api/v1/sensores/', { count: perNode, concurrency: 4, token, body: (n) => ({ tipo: `${node.name}-${n}` }) }),
    );
    await Promise.all(writers.map((w) => w.done));
    for (const w of writers) expect(w.errors).toEqual([]);
    const all = writers.flatMap((w) => w.ok);
    expect(all).toHaveLength(2 * perNode);
    const ids = all.map((e) => e.id as number);
    expect(new Set(ids).size).toBe(ids.length);
    const byId = new Map(all.map((e) => [e.id as number, e]));
    for (const client of subscribers) {
      await awaitKeys(client, ids);
      const got = events(client);
      expect(got).toHaveLength(ids.length);
      for (const f of got) expect(f.data, `entity_id ${f.entity_id}`).toEqual(byId.get(f.entity_id));
    }
    // Every entity reads back the same on the other node.
    for (const e of all.filter((_, i) => i % 40 === 0))
      expect((await rest(e.tipo.startsWith('A') ? b : a, 'GET', `/api/v1/sensores/${e.id}`, undefined, token)).body).toEqual(e);

    await Promise.all([a, b].map((node) => rest(node, 'PUT', `/api/v1/equipment/CAM-${node.name}`, { kind: 'truck', active: true }, token)));
    const tripWriters = cluster.nodes.map((node) =>
      startWriters(node, '/viaje/crear', { count: 40, concurrency: 4, token, body: (n) => ({ equipo: `CAM-${node.name}`, patente: `P${node.name}${n}` }) }),
    );
    await Promise.all(tripWriters.map((w) => w.done));
    for (const w of tripWriters) expect(w.errors).toEqual([]);
    const tripIds = tripWriters.flatMap((w) => w.ok.map((t) => t.id as number));
    expect(new Set(tripIds).size).toBe(80);
  });

  it('the same event has the same offset and epoch on A and on B', async () => {
    const cluster = await startCluster({ nodes: 2, postgres });
    const [a, b] = cluster.nodes;
    const token = await adminToken();
    const onA = await connectChannel(a, '/ws/pets');
    const onB = await connectChannel(b, '/ws/pets');
    const epoch = (onA.established as any).epoch as string;
    expect((onB.established as any).epoch).toBe(epoch);
    for (let i = 1; i <= 10; i++) expect((await rest(i % 2 ? a : b, 'POST', '/api/v1/pets/', { name: `p${i}` }, token)).status).toBe(201);
    const writers = cluster.nodes.map((node) =>
      startWriters(node, '/api/v1/pets/', { count: 50, concurrency: 2, token, body: (n) => ({ name: `${node.name}${n}` }) }),
    );
    await Promise.all(writers.map((w) => w.done));
    const ids = [...Array.from({ length: 10 }, (_, i) => i + 1), ...writers.flatMap((w) => w.ok.map((p) => p.pet_id ?? p.id))];
    for (const client of [onA, onB]) await awaitKeys(client, ids, 20_000, (f) => f.data?.pet_id ?? f.data?.id);
    const positions = (client: typeof onA) => events(client).map((f) => [f.data.name, f.offset, f.epoch]);
    expect(positions(onB)).toEqual(positions(onA));
    expect(events(onA).map((f) => f.offset)).toEqual(Array.from({ length: 110 }, (_, i) => i + 1));
    expect(new Set(events(onA).map((f) => f.epoch))).toEqual(new Set([epoch]));
    for (const node of [a, b]) expect((await rest(node, 'GET', '/api/v1/ws/stats')).body).toMatchObject({ epoch, channels: { pets: { offset: 110 } } });
  });
});
