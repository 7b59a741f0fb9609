/** The bus's topic rights and logins (broker/topic-rights.ts, broker/broker-users.ts) and their config. */
import { describe, expect, it } from 'vitest';
import { BrokerLogins, hashPassword, parseBrokerUsers } from '../../src/broker/broker-users.js';
import { TopicRights, filtersOverlap, topicMatches } from '../../src/broker/topic-rights.js';
import { loadConfig } from '../../src/config/load-config.js';

describe('topicMatches', () => {
  it.each([
    ['gps/#', 'gps/T-1', true],
    ['gps/#', 'gps', true],
    ['gps/#', 'gps/a/b', true],
    ['gps/#', 'gpsx/a', false],
    ['gps/+', 'gps/T-1', true],
    ['gps/+', 'gps/T-1/x', false],
    ['gps/+', 'gps', false],
    ['+/+/gps', 'a/b/gps', true],
    ['#', 'anything/at/all', true],
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
    ['gateway/revocations/#', 'gateway/revocations', true],
    ['gateway/channels/#', 'gateway/channelsX', false],
    ['a/b', 'a/b', true],
    ['a/b', 'a/bc', false],
    ['a/b', 'a', false],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });
});

describe('filtersOverlap', () => {
  it.each([
    ['#', 'gateway/events/#', true],
    ['gateway/#', 'gateway/events/#', true],
    ['+/events/#', 'gateway/events/#', true],
    ['gateway/events/user/u1', 'gateway/events/#', true],
    ['+/+/+', 'gateway/events/#', true],
    ['gateway', 'gateway/revocations/#', false],
    ['gps/#', 'gateway/events/#', false],
    ['gateway/revocations', 'gateway/revocations/#', true],
    ['gateway/+', 'gateway/revocations/#', true],
    ['+', 'gateway/revocations/#', false],
    ['$SYS/#', 'gateway/#', false],
    ['gateway/channelsX/#', 'gateway/channels/#', false],
  ])('%s and %s: %s', (a, b, expected) => {
    expect(filtersOverlap(a, b)).toBe(expected);
    expect(filtersOverlap(b, a)).toBe(expected);
  });
});

describe('TopicRights from the default config', () => {
  const rights = TopicRights.fromConfig(loadConfig({}));
  it('lets devices and anonymous clients publish telemetry only, never on a control topic', () => {
    for (const role of ['device', 'anonymous'] as const) {
      expect(rights.mayPublish(role, 'gps/T-1')).toBe(true);
      for (const topic of [
        'gateway/channels/sensors',
        'gateway/events/all',
        'gateway/azure/extraccion',
        'gateway/revocations',
        'gateway/watchdog/n1',
        'other/topic',
      ]) {
        expect(rights.mayPublish(role, topic), topic).toBe(false);
      }
    }
    for (const role of ['gateway', 'backend'] as const) expect(rights.mayPublish(role, 'gateway/channels/sensors')).toBe(true);
  });

  it('keeps control topics out of telemetry even when GATEWAY_MQTT_TOPICS is #', () => {
    const wide = TopicRights.fromConfig(loadConfig({ GATEWAY_MQTT_TOPICS: '#' }));
    expect(wide.mayPublish('device', 'anything')).toBe(true);
    expect(wide.mayPublish('device', 'gateway/events/all')).toBe(false);
    expect(wide.maySubscribe('device', '#')).toBe(false);
    expect(wide.maySubscribe('device', '$share/g/gateway/events/#')).toBe(false);
    expect(wide.maySubscribe('device', '$SYS/#')).toBe(false);
    expect(wide.maySubscribe('backend', '$SYS/#')).toBe(true);
  });
});

describe('GATEWAY_BROKER_USERS and logins', () => {
  it('checks a scrypt hash and a plain secret, and refuses wrong passwords and unknown users', async () => {
    const hash = await hashPassword('right-password', 1024);
    expect(hash).toMatch(/^scrypt:1024:8:1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$/);
    const logins = new BrokerLogins(
      parseBrokerUsers(JSON.stringify({ d: { role: 'device', password_hash: hash }, b: { role: 'backend', secret: 'backend-secret' } })),
    );
    expect(await logins.check('d', Buffer.from('right-password'))).toBe('device');
    expect(await logins.check('d', Buffer.from('right-password'))).toBe('device'); // remembered
    expect(await logins.check('d', Buffer.from('wrong-password'))).toBeUndefined();
    expect(await logins.check('b', Buffer.from('backend-secret'))).toBe('backend');
    expect(await logins.check('b', Buffer.from('backend-secreT'))).toBeUndefined();
    expect(await logins.check('nobody', Buffer.from('x'))).toBeUndefined();
    expect(await logins.check('d', undefined)).toBeUndefined();
  });

  it.each([
    ['[]', /must be an object/],
    ['{"gateway":{"role":"backend","secret":"12345678"}}', /may not name the user "gateway"/],
    ['{"a":{"role":"admin","secret":"12345678"}}', /needs "role": "device" or "backend"/],
    ['{"a":{"role":"device"}}', /needs exactly one of "password_hash"/],
    ['{"a":{"role":"device","password_hash":"md5:abc"}}', /not scrypt/],
    ['{"a":{"role":"device","secret":"short"}}', /shorter than 8/],
  ])('refuses %s', (json, message) => {
    expect(() => parseBrokerUsers(json)).toThrow(message);
    expect(() => loadConfig({ GATEWAY_BROKER_USERS: json })).toThrow(/GATEWAY_BROKER_USERS/);
  });

  it('never puts a secret in the config error', () => {
    expect(() => loadConfig({ GATEWAY_BROKER_USERS: '{"a":{"role":"device","secret":"sh"}} ' })).toThrow(/\[redacted\]/);
  });
});

describe('broker config defaults', () => {
  it('binds 127.0.0.1 and allows anonymous telemetry only there and only without logins', () => {
    expect(loadConfig({}).broker).toMatchObject({ host: '127.0.0.1', anonymous: 'telemetry', users: [] });
    expect(loadConfig({ GATEWAY_BROKER_HOST: '0.0.0.0' }).broker.anonymous).toBe('none');
    expect(loadConfig({ GATEWAY_BROKER_USERS: '{"a":{"role":"device","secret":"12345678"}}' }).broker.anonymous).toBe('none');
    expect(loadConfig({ GATEWAY_BROKER_HOST: '0.0.0.0', GATEWAY_BROKER_ANONYMOUS: 'telemetry' }).broker.anonymous).toBe('telemetry');
    expect(loadConfig({ GATEWAY_BROKER_ANONYMOUS: 'none' }).broker.anonymous).toBe('none');
  });

  it('wants GATEWAY_MQTT_CERT and GATEWAY_MQTT_KEY together, and readable files', () => {
    expect(() => loadConfig({ GATEWAY_MQTT_CERT: '/etc/hostname' })).toThrow(/GATEWAY_MQTT_KEY must be set together with GATEWAY_MQTT_CERT/);
    expect(() => loadConfig({ GATEWAY_MQTT_CA: '/no/such/ca.pem' })).toThrow(/GATEWAY_MQTT_CA names a file that cannot be read/);
    expect(loadConfig({ GATEWAY_MQTT_USERNAME: 'gw', GATEWAY_MQTT_PASSWORD: 'pw' }).mqtt).toMatchObject({ username: 'gw', password: 'pw', ca: undefined });
  });
});
