/**
 * MQTT payloads on every topic the gateway subscribes: telemetry (gps/#), channel events
 * (gateway/channels/+), user and role events (gateway/events/#), Azure commands (gateway/azure/+)
 * and share-link revocations (gateway/revocations). Random JSON, nesting up to 10,000 deep inside
 * otherwise valid messages, invalid UTF-8 in strings, binary junk, payloads around and over the
 * limits. Nothing answers a publish, so the invariant check after the batch is the oracle: every
 * message counted (processed or rejected), the sentinels through, the bystanders still connected.
 * The publisher has a backend login (the broker lets it publish on the control topics); most control
 * messages carry the cluster key's tag, the rest none, and those must be dropped unauthenticated.
 */
import { clip, badUtf8Object, deepDepth, deepJson, jsonValue, objectText, text } from './gen-values.js';
import type { Rng } from './prng.js';
import { SENTINEL_CHANNEL, SENTINEL_DEVICE, SENTINEL_HUB, SENTINEL_USER, type FuzzNode } from './fuzz-node.js';
import type { FuzzInput, InputResult, Surface } from './runner.js';
import { signControl } from '../helpers/control-key.js';

/**
 * What ingest accepts on a control topic before it checks the tag (src/ingest/ingest-thread.ts: the
 * largest Azure command and payload + 64 KiB + the tag line); larger ones are dropped unauthenticated.
 */
const CONTROL_MAX_BYTES = 1024 * 1024 + 64 * 1024;

interface Publish {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1;
  readonly expect: InputResult['expect'];
}

const DEVICES = ['FZ-1', 'FZ-2', SENTINEL_DEVICE, '42'];
/** Every channel but the bystanders' (user-addressed events there would leave holes in their offsets, by design). */
const CHANNELS = ['general', 'pets', 'readings', 'tasks', 'users', 'viajes', 'no-such-channel', ''];
const EVENT_TARGETS = ['all', `user/${SENTINEL_USER}`, 'user/u1', 'role/admin', 'role/LEVEL_1', 'user/', 'nobody', 'user/bad id', 'role/x/y'];
const AZURE_HUBS = ['extraccion', 'nohub', 'ex traccion'];

/** The payload kinds every topic gets, around a valid message `valid` of that topic. */
function payload(rng: Rng, valid: () => Record<string, unknown>, deepField: string): { bytes: Buffer; kind: string } {
  switch (
    rng.weighted<string>([
      [4, 'valid'],
      [3, 'deep'],
      [2, 'utf8'],
      [2, 'random'],
      [1, 'junk'],
      [1, 'huge'],
      [1, 'proto'],
      [0.5, 'empty'],
    ])
  ) {
    case 'valid':
      return { bytes: Buffer.from(JSON.stringify(valid())), kind: 'valid' };
    case 'deep': {
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(valid())) fields[k] = JSON.stringify(v);
      fields[deepField] = deepJson(rng, deepDepth(rng));
      return { bytes: Buffer.from(objectText(fields)), kind: 'deep' };
    }
    case 'utf8':
      return { bytes: badUtf8Object(rng, valid()), kind: 'utf8' };
    case 'random':
      return { bytes: Buffer.from(JSON.stringify(jsonValue(rng, 4)) ?? 'null'), kind: 'random' };
    case 'junk':
      return { bytes: rng.bytes(rng.size(2000)), kind: 'junk' };
    case 'huge':
      return { bytes: Buffer.from(JSON.stringify({ ...valid(), pad: 'x'.repeat(rng.pick([60_000, 65_400, 70_000, 300_000])) })), kind: 'huge' };
    case 'proto':
      return {
        bytes: Buffer.from(`{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},${JSON.stringify(valid()).slice(1)}`),
        kind: 'proto',
      };
    default:
      return { bytes: Buffer.alloc(0), kind: 'empty' };
  }
}

/** True when the message cannot be valid whatever the gateway's depth limits: not a JSON object. */
function notAnObject(bytes: Buffer): boolean {
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'));
    return v === null || typeof v !== 'object' || Array.isArray(v);
  } catch (err) {
    return !(err instanceof RangeError);
  }
}

function generatePublish(rng: Rng): Publish {
  const qos = rng.chance(0.3) ? 1 : 0;
  switch (
    rng.weighted<string>([
      [4, 'telemetry'],
      [3, 'channel'],
      [2, 'event'],
      [2, 'azure'],
      [1, 'revocation'],
    ])
  ) {
    case 'telemetry': {
      const device = rng.pick(DEVICES);
      const topic = rng.chance(0.9) ? `gps/${device}` : rng.pick(['gps', 'gps/a/b/c', `gps/${'x'.repeat(300)}`]);
      const p = payload(
        rng,
        () => ({ DEVICE_ID: rng.chance(0.9) ? device : jsonValue(rng, 1), LAT: -33.4 + rng.float(), LON: -70.6, SPEED: rng.int(0, 120), NAME: text(rng, 20) }),
        rng.pick(['DATA', 'NAME', 'LAT']),
      );
      return { topic, payload: p.bytes, qos, expect: { telemetry: 1 } };
    }
    case 'channel': {
      const channel = rng.pick(CHANNELS);
      const valid = () =>
        rng.pick<() => Record<string, unknown>>([
          () => ({
            type: 'entity_event',
            entity_type: 'fz',
            event_type: rng.pick(['created', 'updated', 'deleted']),
            entity_id: rng.int(1, 99),
            data: { n: rng.int(0, 9) },
          }),
          () => ({ type: 'realtime_update', entity_type: 'pets', action: 'created', data: { pet_id: rng.int(1, 9), name: text(rng, 10) } }),
          () => ({
            type: 'notification',
            notification_type: 'fz',
            ...(rng.chance(0.5) ? { user_id: rng.pick(['123', SENTINEL_USER]) } : {}),
            data: jsonValue(rng, 2),
          }),
          () => ({ type: 'entity_event', entity_type: 'fz', event_type: 'created', entity_id: 1, data: {}, origin: jsonValue(rng, 2) }),
        ])();
      const p = payload(rng, valid, 'data');
      return { topic: `gateway/channels/${channel}`, payload: p.bytes, qos, expect: { channelMessages: 1 } };
    }
    case 'event': {
      const target = rng.pick(EVENT_TARGETS);
      const p = payload(rng, () => ({ type: rng.pick(['notification', 'task_event', 'system_event']), data: jsonValue(rng, 2) }), 'data');
      const bad = !/^(all|user\/[A-Za-z0-9_.:@-]{1,128}|role\/[A-Za-z0-9_.:@-]{1,128})$/.test(target) || notAnObject(p.bytes) || hasNoType(p.bytes);
      return { topic: `gateway/events/${target}`, payload: p.bytes, qos, expect: { controlRejected: bad ? 1 : 0 } };
    }
    case 'azure': {
      const hub = rng.pick(AZURE_HUBS);
      const command = rng.pick<() => unknown>([
        () => ({
          op: 'send',
          to: { kind: rng.pick(['all', 'group', 'user', 'connection']), name: rng.pick(['g1', 'excavadoras', 'u1']) },
          dataType: rng.pick(['json', 'text', 'binary', 'xml']),
        }),
        () => ({ op: rng.pick(['join', 'leave']), group: rng.pick(['g1', '']), who: { kind: 'user', name: 'u1' } }),
        () => ({ op: 'send', to: { kind: 'all' }, dataType: 'json', filter: rng.pick(["userId eq 'u1'", "userId eq '", 'groups/any(', text(rng, 40)]) }),
        () => ({ op: rng.pick(['close', 'grant', 'revoke', 'explode']), who: { kind: 'all' }, permission: 'sendToGroup', connectionId: 'c1' }),
        () => jsonValue(rng, 3),
      ])();
      const line = rng.chance(0.2) ? deepJson(rng, deepDepth(rng)) : (JSON.stringify(command) ?? 'null');
      const body = rng.pick<() => Buffer>([
        () => Buffer.from(JSON.stringify(jsonValue(rng, 3)) ?? 'null'),
        () => Buffer.from(deepJson(rng, deepDepth(rng))),
        () => badUtf8Object(rng, { a: 1 }),
        () => rng.bytes(rng.size(3000)),
        () => Buffer.alloc(rng.pick([1_048_576, 1_200_000]), 0x61),
      ])();
      return {
        topic: `gateway/azure/${hub}`,
        payload: rng.chance(0.1) ? rng.bytes(rng.size(500)) : Buffer.concat([Buffer.from(`${line}\n`), body]),
        qos,
        expect: { azureCommands: 1 },
      };
    }
    default: {
      const p = payload(
        rng,
        () => ({
          jti: rng.chance(0.8) ? `fz-${rng.int(0, 99)}` : 'x'.repeat(200),
          expires_at: rng.pick([new Date(Date.now() + 60_000).toISOString(), 'never', 5]),
        }),
        'jti',
      );
      const value = (() => {
        try {
          return JSON.parse(p.bytes.toString('utf8'));
        } catch {
          return undefined;
        }
      })();
      const bad =
        notAnObject(p.bytes) ||
        typeof value?.jti !== 'string' ||
        value.jti.length > 128 ||
        typeof value.expires_at !== 'string' ||
        !Number.isFinite(Date.parse(value.expires_at));
      return { topic: 'gateway/revocations', payload: p.bytes, qos, expect: { controlRejected: bad ? 1 : 0 } };
    }
  }
}

function hasNoType(bytes: Buffer): boolean {
  try {
    const v = JSON.parse(bytes.toString('utf8'));
    return typeof v?.type !== 'string' || v.type === '';
  } catch {
    return false;
  }
}

export const bus: Surface = {
  name: 'bus',
  file: 'test/invariants/fuzz-bus.test.ts',
  // One publisher: the messages go out in order (MQTT keeps order per client and topic).
  concurrency: 1,
  generate(rng) {
    return Array.from({ length: 40 }, () => {
      const p = generatePublish(rng);
      if (p.topic === `gateway/azure/${SENTINEL_HUB}` || p.topic === `gateway/channels/${SENTINEL_CHANNEL}`)
        throw new Error(`the fuzzer must leave ${p.topic} to the sentinels`);
      const control = !p.topic.startsWith('gps');
      const signed = control && rng.chance(0.85);
      // Unsigned, or too large to be read before its tag: dropped before any handler, counted as such.
      const dropped = control && (!signed || p.payload.length > CONTROL_MAX_BYTES);
      return {
        label: `${p.topic} qos${p.qos}${control ? (signed ? ' tagged' : ' untagged') : ''}: ${clip(p.payload, 160)}`,
        run: async (node: FuzzNode): Promise<InputResult> => {
          await node.bus.publishAsync(p.topic, signed ? signControl(p.topic, p.payload) : p.payload, { qos: p.qos });
          return { problems: [], expect: dropped ? { unauthenticated: 1 } : p.expect };
        },
      } satisfies FuzzInput;
    });
  },
};
