/**
 * Trip coordination (docs/compat/trips.md) on the gateway alone, driven by the official Azure SDKs:
 * equipment from GATEWAY_EQUIPMENT_FILE, /ws/negotiate, the trip lifecycle over REST (real
 * SQLite), and @azure/web-pubsub-client connections of an excavator and a truck receiving the events.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { adminToken, rest } from '../helpers/channels.js';
import { eventually, type GatewayProcess } from '../helpers/gateway-process.js';
import { collect, startAzureGateway, startClient } from '../helpers/azure.js';

const negotiate = async (gw: GatewayProcess, userId: string) => {
  const res = await fetch(`${gw.http}/ws/negotiate?user_id=${encodeURIComponent(userId)}`);
  return { status: res.status, body: (await res.json()) as any };
};

async function equipmentClient(gw: GatewayProcess, code: string, group: string) {
  const client = await startClient(async () => (await negotiate(gw, code)).body.url);
  const inbox = collect(client);
  await client.joinGroup(group);
  return inbox;
}

describe('trips', () => {
  it("an excavator in excavadoras receives a truck's whole trip lifecycle, in order, with the reference's payloads", async () => {
    const gw = await startAzureGateway();
    const token = await adminToken();
    const excavator = await equipmentClient(gw, 'EXC-001', 'excavadoras');
    const truck = await equipmentClient(gw, 'CAM-102', 'camiones');

    const created = await rest(
      gw,
      'POST',
      '/viaje/crear',
      {
        id_jornada: 789,
        usuario: 'conductor@empresa.cl',
        equipo: 'CAM-101',
        patente: 'ABCD12',
        id_producto: 5,
        descripcion_producto: 'Mineral Cu',
        conductor: 'Juan Pérez',
        hora_inicio: '2026-01-21T10:30:00',
        latitud_carga: '-23.456',
        longitud_carga: '-68.789',
      },
      token,
    );
    expect(created).toMatchObject({ status: 200, body: { id: expect.any(Number) } });
    const id = created.body.id;
    for (const [method, step, extra] of [
      ['PATCH', 'actualizar', { hora_carga: '2026-01-21T10:35:00' }],
      ['POST', 'finalizar-carga', { hora_fin_carga: '2026-01-21T10:45:00' }],
      ['POST', 'en-descarga', {}],
      ['POST', 'finalizar', {}],
    ] as const) {
      const reply = await rest(gw, method, `/viaje/${step}`, { id_movimiento: id, ...extra }, token);
      expect(reply.status, `${step}: ${JSON.stringify(reply.body)}`).toBe(200);
    }
    const second = await rest(gw, 'POST', '/viaje/crear', { equipo: 'CAM-101', patente: 'EFGH34' }, token);
    expect((await rest(gw, 'POST', '/viaje/cancelar', { IdMovimiento: second.body.id, motivo: 'falla mecánica' }, token)).status).toBe(200);

    // All six kinds of event, in order (the second trip's creation comes before its cancellation).
    const events = await excavator.until(7);
    expect(events.map((m) => m.data.data)).toEqual([
      'ViajeCreado',
      'ViajeActualizado',
      'CargaFinalizada',
      'ViajeEnDescarga',
      'ViajeFinalizado',
      'ViajeCreado',
      'ViajeCancelado',
    ]);
    expect(events.every((m) => m.kind === 'groupData' && m.group === 'excavadoras' && m.dataType === 'json')).toBe(true);
    expect(events[0].data).toEqual({
      data: 'ViajeCreado',
      trip_data: {
        IdMovimiento: id,
        IdJornada: 789,
        Usuario: 'conductor@empresa.cl',
        Equipo: 'CAM-101',
        Patente: 'ABCD12',
        IdProducto: 5,
        DescripcionProducto: 'Mineral Cu',
        Conductor: 'Juan Pérez',
        HoraInicio: '2026-01-21T10:30:00',
        HoraCarga: null,
        LatitudCarga: '-23.456',
        LongitudCarga: '-68.789',
      },
      equipo: 'CAM-101',
      timestamp: expect.stringMatching(/Z$/),
    });
    expect(events[1].data).toMatchObject({
      data: 'ViajeActualizado',
      IdMovimiento: id,
      HoraCarga: '2026-01-21T10:35:00',
      Patente: 'ABCD12',
      equipo: 'CAM-101',
    });
    expect(events[2].data).toMatchObject({
      data: 'CargaFinalizada',
      IdMovimiento: id,
      Patente: 'ABCD12',
      HoraFinCarga: '2026-01-21T10:45:00',
      equipo: 'CAM-101',
    });
    expect(events[4].data).toEqual({ data: 'ViajeFinalizado', IdMovimiento: id, Patente: 'ABCD12', equipo: 'CAM-101', timestamp: expect.any(String) });
    expect(events[6].data).toMatchObject({ data: 'ViajeCancelado', IdMovimiento: second.body.id, Patente: 'EFGH34', Motivo: 'falla mecánica' });
    // Trucks hear what frees a loading spot: the end of loading and a cancellation.
    expect((await truck.until(2)).map((m) => m.data.data)).toEqual(['CargaFinalizada', 'ViajeCancelado']);

    expect((await rest(gw, 'GET', `/viaje/${id}`, undefined, token)).body).toMatchObject({
      IdMovimiento: id,
      estado: 'finalizado',
      HoraFinCarga: '2026-01-21T10:45:00',
    });
    const stats = await eventually(
      async () => {
        const s = (await rest(gw, 'GET', '/api/v1/trips/stats')).body;
        return s.events_last_hour === 7 && s.connected_equipment === 2 ? s : false;
      },
      15_000,
      'trip stats',
    );
    expect(stats).toMatchObject({ active_fleet: 3, trip_events_delivered: 7, connection_errors: 0, messages_lost: 0, hub: 'extraccion' });
    expect(stats.latency_avg_ms).toBeGreaterThanOrEqual(0);
    const metrics = await (await fetch(`${gw.http}/metrics`)).text();
    expect(metrics).toMatch(/gateway_trips_active_fleet 3/);
    expect(metrics).toMatch(/gateway_trip_events_delivered_total 7/);
  }, 40_000);

  it('refuses illegal transitions with 409 and no event, and unknown trips and equipment', async () => {
    const gw = await startAzureGateway();
    const token = await adminToken();
    const excavator = await equipmentClient(gw, 'EXC-001', 'excavadoras');
    const {
      body: { id },
    } = await rest(gw, 'POST', '/viaje/crear', { equipo: 'CAM-101', patente: 'AA11' }, token);
    expect((await rest(gw, 'POST', '/viaje/finalizar-carga', { id_movimiento: id }, token)).status).toBe(200);
    const twice = await rest(gw, 'POST', '/viaje/finalizar-carga', { id_movimiento: id }, token);
    expect(twice).toMatchObject({
      status: 409,
      body: { error: { code: 'GW_ERR_TRIP_TRANSITION', message: expect.stringMatching(/carga_finalizada: finalizar-carga is allowed only from creado/) } },
    });
    expect((await rest(gw, 'POST', '/viaje/cancelar', { id_movimiento: id }, token)).status).toBe(200);
    for (const step of ['finalizar', 'en-descarga', 'cancelar', 'actualizar']) {
      const body = step === 'actualizar' ? { id_movimiento: id, patente: 'ZZ' } : { id_movimiento: id };
      const reply = await rest(gw, step === 'actualizar' ? 'PATCH' : 'POST', `/viaje/${step}`, body, token);
      expect(reply, step).toMatchObject({ status: 409, body: { error: { code: 'GW_ERR_TRIP_TRANSITION' } } });
    }
    expect((await rest(gw, 'POST', '/viaje/finalizar', { id_movimiento: 9999 }, token)).body.error.code).toBe('GW_ERR_TRIP_NOT_FOUND');
    expect((await rest(gw, 'POST', '/viaje/crear', { equipo: 'CAM-999', patente: 'X' }, token)).body.error.code).toBe('GW_ERR_EQUIPMENT_UNKNOWN');
    expect((await rest(gw, 'POST', '/viaje/crear', { equipo: 'EXC-001', patente: 'X' }, token)).body.error.message).toMatch(/excavator, not a truck/);
    expect((await rest(gw, 'POST', '/viaje/crear', { equipo: 'CAM-101' }, token)).body.error.message).toMatch(/"patente" is required/);
    expect((await rest(gw, 'POST', '/viaje/crear', { equipo: 'CAM-101', patente: 'X', color: 'red' }, token)).body.error.message).toMatch(
      /Unknown field "color"/,
    );
    expect((await rest(gw, 'POST', '/viaje/finalizar', { id_movimiento: 'one' }, token)).status).toBe(400);
    expect((await rest(gw, 'POST', '/viaje/crear', { equipo: 'CAM-101', patente: 'X' })).status).toBe(401);

    // The refused steps emitted nothing: the excavator's events are exactly the three legal ones, then the next.
    const { body: next } = await rest(gw, 'POST', '/viaje/crear', { equipo: 'CAM-101', patente: 'BB22' }, token);
    const events = await excavator.until(4);
    expect(events.map((m) => `${m.data.data}:${m.data.IdMovimiento ?? m.data.trip_data.IdMovimiento}`)).toEqual([
      `ViajeCreado:${id}`,
      `CargaFinalizada:${id}`,
      `ViajeCancelado:${id}`,
      `ViajeCreado:${next.id}`,
    ]);
  }, 30_000);

  it("negotiate gives registered active equipment a 1 h token with the reference's roles, and refuses the rest", async () => {
    const gw = await startAzureGateway();
    const ok = await negotiate(gw, 'EXC-001');
    expect(ok.status).toBe(200);
    const url = new URL(ok.body.url);
    expect(`${url.protocol}//${url.host}${url.pathname}`).toBe(`ws://127.0.0.1:${gw.port}/client/hubs/extraccion`);
    const claims = decodeJwt(url.searchParams.get('access_token')!);
    expect(claims).toMatchObject({ sub: 'EXC-001', role: ['webpubsub.joinLeaveGroup', 'webpubsub.sendToGroup'] });
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(await negotiate(gw, 'EXC-404')).toMatchObject({
      status: 404,
      body: { error: { code: 'GW_ERR_EQUIPMENT_UNKNOWN', message: expect.stringMatching(/^Invalid User ID/) } },
    });
    expect(await negotiate(gw, 'EXC-009')).toMatchObject({ status: 403, body: { error: { code: 'GW_ERR_EQUIPMENT_INACTIVE' } } });
    expect((await negotiate(gw, '')).status).toBe(404);

    // The registry over REST: deactivating equipment stops its negotiation.
    const token = await adminToken();
    expect((await rest(gw, 'GET', '/api/v1/equipment', undefined, token)).body.map((e: any) => e.code)).toEqual(['CAM-101', 'CAM-102', 'EXC-001', 'EXC-009']);
    expect((await rest(gw, 'PUT', '/api/v1/equipment/EXC-001', { kind: 'excavator', active: false }, token)).body).toMatchObject({
      code: 'EXC-001',
      active: false,
    });
    expect((await negotiate(gw, 'EXC-001')).status).toBe(403);
    expect((await rest(gw, 'PUT', '/api/v1/equipment/EXC-002', { kind: 'crane' }, token)).body.error.message).toMatch(/truck or excavator/);
    expect((await rest(gw, 'DELETE', '/api/v1/equipment/EXC-009', undefined, token)).status).toBe(200);
    expect((await rest(gw, 'GET', '/api/v1/equipment/EXC-009', undefined, token)).status).toBe(404);
  }, 30_000);
});
