import { describe, expect, it } from 'vitest';
import { DEFAULT_CHANNELS, parseChannelsConfig } from '../../src/features/channels/channel-config.js';
import { parseChannelEvent } from '../../src/features/channels/channel-event.js';
import { renderEvent } from '../../src/features/channels/envelopes.js';
import { parseEntityId, validateEntityBody } from '../../src/features/channels/entity-fields.js';
import { loadConfig } from '../../src/config/load-config.js';
import { parseClientFrame } from '../../src/protocol/client-frames.js';
import { parseSince } from '../../src/features/channels/edge/channel-route.js';

const defaults = { historySize: 1000, historyTtlS: 3600 };
const config = parseChannelsConfig(DEFAULT_CHANNELS, defaults, 'extraccion');
const sensores = config.collections.find((c) => c.path === 'sensores')!;

describe('channel configuration', () => {
  it('serves the three references by default, every collection channel plus general and users', () => {
    expect(config.collections.map((c) => c.path)).toEqual(expect.arrayContaining(['sensores', 'lecturas', 'pets', 'reservations', 'tareas', 'efectivos']));
    expect(config.channels.map((c) => c.name)).toEqual(expect.arrayContaining(['sensors', 'readings', 'pets', 'tasks', 'general', 'users']));
    expect(sensores).toMatchObject({ channel: 'sensors', entityType: 'sensor', idField: 'id', testPath: 'test-sensors' });
    expect(config.collections.find((c) => c.path === 'pets')).toMatchObject({ idField: 'pet_id', entityType: 'pets' });
  });

  it('takes per-channel history bounds and refuses what is wrong, saying where', () => {
    const custom = parseChannelsConfig(
      { collections: [{ path: 'tareas', channel: 'tasks' }], channels: { tasks: { history_size: 5, history_ttl_s: 60 } } },
      defaults,
      'extraccion',
    );
    expect(custom.channels).toEqual([
      { name: 'tasks', historySize: 5, historyTtlS: 60, azureHub: null },
      { name: 'viajes', historySize: 1000, historyTtlS: 3600, azureHub: 'extraccion' },
    ]);
    expect(custom.collections[0]).toMatchObject({ entityType: 'tasks', fields: null, testPath: null });
    expect(() => parseChannelsConfig({}, defaults, 'extraccion')).toThrow(/"collections" list/);
    expect(() => parseChannelsConfig({ collections: [{ path: 'Bad Name', channel: 'x' }] }, defaults, 'extraccion')).toThrow(/collections\[0\]\.path/);
    expect(() =>
      parseChannelsConfig(
        {
          collections: [
            { path: 'a', channel: 'x' },
            { path: 'a', channel: 'y' },
          ],
        },
        defaults,
        'extraccion',
      ),
    ).toThrow(/used twice/);
    expect(() => parseChannelsConfig({ collections: [{ path: 'stream', channel: 'x' }] }, defaults, 'extraccion')).toThrow(/reserved/);
    expect(() => parseChannelsConfig({ collections: [{ path: 'a', channel: 'x', fields: { f: { type: 'date' } } }] }, defaults, 'extraccion')).toThrow(
      /fields\.f\.type/,
    );
    expect(() => parseChannelsConfig({ collections: [], channels: { x: { history_size: -1 } } }, defaults, 'extraccion')).toThrow(/history_size/);
  });

  it('is read from GATEWAY_CHANNELS, with errors naming the variable', () => {
    const loaded = loadConfig({ GATEWAY_CHANNELS: JSON.stringify({ collections: [{ path: 'things', channel: 'things' }] }), GATEWAY_HISTORY_SIZE: '7' });
    expect(loaded.events.channels.channels).toEqual([
      { name: 'things', historySize: 7, historyTtlS: 3600, azureHub: null },
      { name: 'viajes', historySize: 7, historyTtlS: 3600, azureHub: 'extraccion' },
    ]);
    expect(() => loadConfig({ GATEWAY_CHANNELS: '{nope' })).toThrow(/GATEWAY_CHANNELS is not valid JSON/);
    expect(() => loadConfig({ GATEWAY_CHANNELS: '@/no/such/file.json' })).toThrow(/GATEWAY_CHANNELS names a file that cannot be read/);
    expect(() => loadConfig({ GATEWAY_CHANNELS_TOPIC: 'gateway/#' })).toThrow(/GATEWAY_CHANNELS_TOPIC/);
    expect(() => loadConfig({ GATEWAY_AUTH_REQUIRED: 'everything' })).toThrow(/GATEWAY_AUTH_REQUIRED/);
  });
});

describe('entity bodies and ids', () => {
  it('validates a create against the field specs and an update as a subset', () => {
    expect(validateEntityBody(sensores, { tipo: 'x', activo: true }, 'create')).toEqual({ tipo: 'x', activo: true });
    expect(validateEntityBody(sensores, { modelo: 'y' }, 'update')).toEqual({ modelo: 'y' });
    expect(() => validateEntityBody(sensores, {}, 'update')).toThrow(/no field/);
    expect(() => validateEntityBody(sensores, { tipo: null }, 'create')).toThrow(/"tipo" is required/);
    expect(() => validateEntityBody(sensores, { created_at: 'x', tipo: 'x' }, 'create')).toThrow(/set by the gateway/);
    const free = config.collections.find((c) => c.path === 'payments')!;
    expect(validateEntityBody(free, { amount: 10, currency: 'CLP' }, 'create')).toEqual({ amount: 10, currency: 'CLP' });
    expect(() => validateEntityBody(free, { 'bad key': 1 }, 'create')).toThrow(/Field name/);
    expect(() => validateEntityBody(free, { payment_id: 1 }, 'create')).toThrow(/set by the gateway/);
  });

  it('takes only positive whole ids', () => {
    expect(parseEntityId('42')).toBe(42);
    for (const bad of ['0', '-1', '1e3', '01', '', 'x', '9999999999999999']) expect(() => parseEntityId(bad), bad).toThrow(/positive whole number/);
  });
});

describe('channel events', () => {
  it("parses the three reference envelopes into one shape and renders each endpoint family's envelope", () => {
    const entity = parseChannelEvent({
      type: 'entity_event',
      entity_type: 'sensor',
      event_type: 'created',
      entity_id: 1,
      data: { id: 1 },
      timestamp: '2025-07-20T05:34:11Z',
    });
    const update = parseChannelEvent({
      type: 'realtime_update',
      entity_type: 'sensor',
      action: 'created',
      entity_id: 1,
      data: { id: 1 },
      timestamp: '2025-07-20T05:34:11Z',
    });
    expect(update).toEqual(entity);
    const frames = renderEvent(entity, 'sensors', 3, 'e1');
    expect(frames).toHaveLength(6);
    expect(JSON.parse(frames[0] as string)).toEqual({
      type: 'entity_event',
      entity_type: 'sensor',
      event_type: 'created',
      entity_id: 1,
      data: { id: 1 },
      timestamp: '2025-07-20T05:34:11Z',
      offset: 3,
      epoch: 'e1',
    });
    expect(JSON.parse(frames[2] as string)).toMatchObject({ type: 'realtime_update', action: 'created', offset: 3 });
    expect(JSON.parse(frames[4] as string)).toMatchObject({ type: 'sensor_event', action: 'created', channel: 'sensors' });
    expect(frames[1]).toBeInstanceOf(Uint8Array);
    const note = renderEvent(parseChannelEvent({ type: 'notification', notification_type: 'ok', user_id: 123 }), 'users', 1, 'e1');
    expect(JSON.parse(note[0] as string)).toMatchObject({ type: 'notification', user_id: '123', data: {} });
    expect(note[2]).toBe(note[0]); // one encoding for every endpoint
  });

  it('refuses wrong shapes, naming the field', () => {
    expect(() => parseChannelEvent('x')).toThrow(/JSON object/);
    expect(() => parseChannelEvent({ type: 'entity_event', entity_type: 'a', event_type: 'b', data: [] })).toThrow(/"data"/);
    expect(() => parseChannelEvent({ type: 'entity_event', entity_type: 'a b', event_type: 'c', data: {} })).toThrow(/"entity_type"/);
    expect(() => parseChannelEvent({ type: 'notification', notification_type: 'x', timestamp: 'yesterday' })).toThrow(/"timestamp"/);
    expect(() => parseChannelEvent({ type: 'notification', notification_type: 'x', user_id: {} })).toThrow(/"user_id"/);
  });
});

describe('client frames and since', () => {
  const schema = { ping: {}, refresh_token: { token: 'string' } } as const;
  it('checks type and fields against the endpoint schema', () => {
    expect(parseClientFrame({ type: 'ping' }, schema)).toEqual({ type: 'ping' });
    expect(() => parseClientFrame([], schema)).toThrow(expect.objectContaining({ code: 'GW_ERR_FRAME_INVALID' }));
    expect(() => parseClientFrame({ type: 'constructor' }, schema)).toThrow(expect.objectContaining({ code: 'GW_ERR_UNKNOWN_ACTION' }));
    expect(() => parseClientFrame({ type: 'refresh_token', token: 5 }, schema)).toThrow(/"token"/);
  });

  it('parses since and epoch together, or neither', () => {
    expect(parseSince(undefined, undefined)).toBeNull();
    expect(parseSince('12', 'abc')).toEqual({ offset: 12, epoch: 'abc' });
    expect(() => parseSince('12', undefined)).toThrow(/epoch/);
    expect(() => parseSince(undefined, 'abc')).toThrow(/since/);
    expect(() => parseSince('1.5', 'abc')).toThrow(/whole number/);
  });
});
