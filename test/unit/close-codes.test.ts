/**
 * errors/close-codes.ts: one table of closes. Rows that share a code share the reconnect flag, the
 * flag follows the application ranges of docs/architecture.md, and the client's rule (shouldReconnect) is the
 * table's flag, with codes outside the table reconnecting unless they are in 4500-4999.
 */
import { describe, expect, it } from 'vitest';
import { CLOSE, shouldReconnect } from '../../src/errors/close-codes.js';

describe('the close table', () => {
  const rows = Object.values(CLOSE);

  it("gives one reconnect flag per code, and the ranges' meaning to the application codes", () => {
    for (const row of rows) {
      expect(
        rows.filter((r) => r.code === row.code).every((r) => r.reconnect === row.reconnect),
        String(row.code),
      ).toBe(true);
      if (row.code >= 4000 && row.code <= 4499) expect(row.reconnect).toBe(true);
      if (row.code >= 4500 && row.code <= 4999) expect(row.reconnect).toBe(false);
    }
  });

  it("is the client's reconnect rule", () => {
    for (const row of rows) expect(shouldReconnect(row.code)).toBe(row.reconnect);
    // The rule before the table (reconnecting-client.ts): reconnect unless 1000, 1008, 1009 or 4500-4999.
    const before = (code: number) => !(code === 1000 || code === 1008 || code === 1009 || (code >= 4500 && code <= 4999));
    for (const code of [0, 1000, 1001, 1002, 1005, 1006, 1007, 1008, 1009, 1011, 3000, 4000, 4001, 4002, 4029, 4499, 4500, 4501, 4999, 5000]) {
      expect(shouldReconnect(code), String(code)).toBe(before(code));
    }
  });

  it('keeps reasons short enough for a close frame', () => {
    for (const row of rows) if (row.reason !== null) expect(new TextEncoder().encode(row.reason).length).toBeLessThanOrEqual(123);
  });
});
