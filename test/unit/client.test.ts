/** The client SDK's pure parts: backoff delays (full jitter, capped) and reading a JWT's expiry. */
import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/client/backoff.js';
import { tokenExpiresAt } from '../../src/client/token-expiry.js';

describe('backoffDelay', () => {
  it('is a uniform draw below a ceiling that doubles per attempt up to the cap', () => {
    const options = { initialDelayMs: 100, maxDelayMs: 1_000 };
    expect([0, 1, 2, 3, 4, 10, 500].map((a) => backoffDelay(a, options, () => 0.999999))).toEqual([99, 199, 399, 799, 999, 999, 999]);
    expect(backoffDelay(7, options, () => 0)).toBe(0); // full jitter: anywhere from zero
    const draws = Array.from({ length: 2_000 }, () => backoffDelay(3, options));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(800);
    expect(new Set(draws).size).toBeGreaterThan(100); // spread out, not one wave
    expect(backoffDelay(0)).toBeLessThan(500); // defaults: 500 ms first ceiling
    expect(backoffDelay(40, {}, () => 0.999999)).toBe(29_999); // capped at 30 s
  });
});

describe('tokenExpiresAt', () => {
  const jwt = (payload: object) => `e30.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;
  it('reads exp from a JWT, and says null for anything else', () => {
    expect(tokenExpiresAt(jwt({ sub: 'u', exp: 1_800_000_000 }))).toBe(1_800_000_000_000);
    expect(tokenExpiresAt(jwt({ sub: 'ü-ñ', exp: 1_800_000_001, x: '??>>' }))).toBe(1_800_000_001_000);
    expect(tokenExpiresAt(jwt({ sub: 'u' }))).toBeNull();
    expect(tokenExpiresAt('v4.local.abc')).toBeNull();
    expect(tokenExpiresAt('a.%%%.c')).toBeNull();
  });
});
