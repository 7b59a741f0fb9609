/**
 * retryAtStart (src/store/retry-at-start.ts): a start load retried while the store is busy or
 * unreachable, until the start's deadline; any other error ends it at once.
 */
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { retryAtStart } from '../../src/store/retry-at-start.js';

const logger = { warn: () => undefined };

function failing<T>(errors: Error[], value: T): { load: () => Promise<T>; calls: () => number } {
  let calls = 0;
  return {
    load: async () => {
      const err = errors[calls++];
      if (err !== undefined) throw err;
      return value;
    },
    calls: () => calls,
  };
}

describe('retryAtStart', () => {
  it('retries a busy or unreachable store until the load succeeds', async () => {
    const busy = new GatewayError('GW_ERR_OVERLOADED', 'busy');
    const down = new GatewayError('GW_ERR_STORE_UNAVAILABLE', 'down');
    const f = failing([busy, down, busy], 42);
    await expect(retryAtStart('x', f.load, 10_000, logger)).resolves.toBe(42);
    expect(f.calls()).toBe(4);
  });

  it('ends at once on any other error', async () => {
    const f = failing([new Error('a row that does not parse')], 1);
    await expect(retryAtStart('x', f.load, 10_000, logger)).rejects.toThrow('a row that does not parse');
    expect(f.calls()).toBe(1);
    const g = failing([new GatewayError('GW_ERR_NOT_FOUND', 'no')], 1);
    await expect(retryAtStart('x', g.load, 10_000, logger)).rejects.toThrow('no');
    expect(g.calls()).toBe(1);
  });

  it('gives up with the store error once the deadline has passed', async () => {
    const busy = new GatewayError('GW_ERR_OVERLOADED', 'still busy');
    const f = failing(Array<Error>(1000).fill(busy), 1);
    await expect(retryAtStart('x', f.load, 300, logger)).rejects.toThrow('still busy');
    expect(f.calls()).toBeGreaterThan(1);
  });
});
