import { describe, expect, it } from 'vitest';
import { CLOCK_WINDOW_S, ControlAuth } from '../../src/ingest/control-auth.js';
import { signControl, TEST_CLUSTER_KEY } from '../helpers/control-key.js';

const TOPIC = 'gateway/channels/sensors';
const BODY = '{"type":"entity_event","entity_type":"sensor","event_type":"created","entity_id":7,"data":{}}';
const auth = new ControlAuth(TEST_CLUSTER_KEY, 2 * 1024 * 1024);

describe('control message tags (GWMAC1)', () => {
  it('opens what the recipe of docs/guide/security.md signs (an independent implementation), and the body is a view of the payload', () => {
    const payload = signControl(TOPIC, BODY);
    const body = auth.open(TOPIC, payload);
    expect(body?.toString()).toBe(BODY);
    expect(body?.buffer).toBe(payload.buffer);
  });

  it('signs strings and bytes alike, in the documented format', () => {
    const now = 1_800_000_000_000;
    const fixed = new ControlAuth(TEST_CLUSTER_KEY, 1 << 20, () => now);
    const text = fixed.sign(TOPIC, BODY);
    expect(text).toBe(signControl(TOPIC, BODY, TEST_CLUSTER_KEY, now / 1000).toString());
    expect(fixed.sign(TOPIC, Buffer.from(BODY)).toString()).toBe(text);
    expect(text).toMatch(/^GWMAC1 1800000000 [0-9a-f]{64}\n\{/);
  });

  it('regression: an unsigned control message is not opened', () => {
    expect(auth.open(TOPIC, Buffer.from(BODY))).toBeNull();
    expect(auth.refusal).toBe('unsigned');
  });

  it('regression: a message signed with another key is not opened', () => {
    expect(auth.open(TOPIC, signControl(TOPIC, BODY, 'another-cluster-key-0123456789abcdef0123456789'))).toBeNull();
    expect(auth.refusal).toBe('wrong tag');
  });

  it('accepts tags of GATEWAY_CLUSTER_KEY_ACCEPTED too (rotation), and tags with the main key only', () => {
    const other = 'another-cluster-key-0123456789abcdef0123456789';
    const rotating = new ControlAuth(TEST_CLUSTER_KEY, 1 << 20, Date.now, other);
    expect(rotating.open(TOPIC, signControl(TOPIC, BODY, other))?.toString()).toBe(BODY);
    expect(rotating.open(TOPIC, signControl(TOPIC, BODY))?.toString()).toBe(BODY);
    expect(auth.open(TOPIC, Buffer.from(rotating.sign(TOPIC, BODY)))?.toString()).toBe(BODY);
    expect(rotating.open(TOPIC, signControl(TOPIC, BODY, 'a-third-cluster-key-0123456789abcdef0123456789'))).toBeNull();
  });

  it('regression: a signed message moved to another topic is not opened', () => {
    expect(auth.open('gateway/channels/other', signControl(TOPIC, BODY))).toBeNull();
    expect(auth.open('gateway/events/all', signControl('gateway/events/user/alice', '{"type":"x"}'))).toBeNull();
    expect(auth.refusal).toBe('wrong tag');
  });

  it('regression: a changed body or time is not opened', () => {
    const payload = signControl(TOPIC, BODY);
    const changed = Buffer.from(payload);
    changed[changed.length - 2] ^= 1;
    expect(auth.open(TOPIC, changed)).toBeNull();
    const text = payload.toString();
    const ts = Number(text.split(' ')[1]);
    expect(auth.open(TOPIC, Buffer.from(text.replace(` ${ts} `, ` ${ts + 1} `)))).toBeNull();
    expect(auth.refusal).toBe('wrong tag');
  });

  it('regression: a replay outside the clock window is not opened; inside it is', () => {
    const now = Math.floor(Date.now() / 1000);
    expect(auth.open(TOPIC, signControl(TOPIC, BODY, TEST_CLUSTER_KEY, now - CLOCK_WINDOW_S - 5))).toBeNull();
    expect(auth.refusal).toBe('outside the clock window');
    expect(auth.open(TOPIC, signControl(TOPIC, BODY, TEST_CLUSTER_KEY, now + CLOCK_WINDOW_S + 5))).toBeNull();
    expect(auth.open(TOPIC, signControl(TOPIC, BODY, TEST_CLUSTER_KEY, now - CLOCK_WINDOW_S + 5))).not.toBeNull();
  });

  it('regression: malformed tags and oversized payloads are refused before any HMAC', () => {
    for (const bad of [
      'GWMAC1 ',
      'GWMAC1 x 00\n{}',
      `GWMAC1 1 ${'z'.repeat(64)}\n{}`,
      `GWMAC1 1234567890123 ${'0'.repeat(64)}\n{}`,
      `GWMAC1 12 ${'0'.repeat(63)}\n{}`,
      `GWMAC1 12 ${'0'.repeat(64)}`,
    ]) {
      expect(auth.open(TOPIC, Buffer.from(bad))).toBeNull();
      expect(auth.refusal).toBe('malformed tag');
    }
    const small = new ControlAuth(TEST_CLUSTER_KEY, 100);
    expect(small.open(TOPIC, signControl(TOPIC, 'x'.repeat(100)))).toBeNull();
    expect(small.refusal).toBe('too large');
  });
});
