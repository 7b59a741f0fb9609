/**
 * Which devices each benchmark connection watches. Deterministic, so two runs with the same options
 * put the same load on the same topics: connection c watches devices (c·k + j) mod D for j < k.
 * With C·k ≥ D every device has ⌊C·k/D⌋ or ⌈C·k/D⌉ watchers.
 */

const DEVICE_PREFIX = 'BENCH';

/** `BENCH-0001`-style ids, 1-based, zero-padded to at least four digits. */
export function deviceIds(devices: number): string[] {
  const width = Math.max(4, String(devices).length);
  return Array.from({ length: devices }, (_, i) => `${DEVICE_PREFIX}-${String(i + 1).padStart(width, '0')}`);
}

/** Device indexes watched by connection `conn`; distinct as long as perConn ≤ devices. */
export function devicesForConnection(conn: number, perConn: number, devices: number): number[] {
  const out = new Array<number>(perConn);
  for (let j = 0; j < perConn; j++) out[j] = (conn * perConn + j) % devices;
  return out;
}

/** watchers[d] = number of connections that receive device d's messages. */
export function watcherCounts(connections: number, perConn: number, devices: number): Uint32Array {
  const watchers = new Uint32Array(devices);
  for (let c = 0; c < connections; c++) {
    for (const d of devicesForConnection(c, perConn, devices)) watchers[d]++;
  }
  return watchers;
}
