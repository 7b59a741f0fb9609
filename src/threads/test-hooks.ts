/**
 * Test-only hooks for the watchdog's tests. They exist only with ENVIRONMENT=test and
 * GATEWAY_TEST_HOOKS=bus (config.health.testHooks is empty otherwise): ingest then also subscribes
 * `<GATEWAY_WATCHDOG_TOPIC>/_test`, where a message `{"hook":"…","edge":0}` does one of:
 *
 *   wedge-ingest      the ingest thread busy-loops forever (its heartbeat stops)
 *   exit-ingest       the ingest thread ends (process.exit in a worker ends only that thread)
 *   stall-mqtt        the ingest MQTT client stops delivering messages; the thread runs on
 *   wedge-edge        edge `edge` busy-loops forever
 *   crash-store-pool  edge `edge` sends the store pool a task that ends its thread (Piscina starts another)
 *   break-store-pool  likewise, and every store pool thread started after it fails as it starts
 */
const BUS_HOOKS = ['wedge-ingest', 'exit-ingest', 'stall-mqtt', 'wedge-edge', 'crash-store-pool', 'break-store-pool'] as const;
export type BusHook = (typeof BUS_HOOKS)[number];

export interface BusHookMessage {
  readonly hook: BusHook;
  readonly edge: number;
}

export function parseBusHook(payload: Buffer): BusHookMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { hook, edge } = value as Record<string, unknown>;
  if (!BUS_HOOKS.includes(hook as BusHook)) return null;
  return { hook: hook as BusHook, edge: typeof edge === 'number' && Number.isInteger(edge) ? edge : 0 };
}

/** A thread that stops making progress, on purpose. */
export function spinForever(): never {
  for (;;) {
    // wedged
  }
}
