/**
 * Fuzzes MQTT payloads on every topic the gateway subscribes against a running node; see
 * runner.ts for FUZZ_SEED, FUZZ_BUDGET_MS and FUZZ_BATCHES.
 */
import { describe, expect, it } from 'vitest';
import { fuzzSettings, runSurface, timeoutFor } from './runner.js';
import { bus } from './surface-bus.js';

const settings = fuzzSettings();

describe('invariants under fuzzed bus messages', () => {
  it(
    `every message is counted, and the node keeps serving everyone (seed ${settings.seed})`,
    async () => {
      const { failures, batches } = await runSurface(bus, settings);
      expect(failures.join('\n\n'), `${batches} batches`).toBe('');
    },
    timeoutFor(settings),
  );
});
