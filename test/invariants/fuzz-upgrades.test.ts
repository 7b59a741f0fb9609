/**
 * Fuzzes the upgrade requests of every WebSocket route (paths, queries, subprotocols, tokens)
 * against a running node; see runner.ts for FUZZ_SEED, FUZZ_BUDGET_MS and FUZZ_BATCHES.
 */
import { describe, expect, it } from 'vitest';
import { fuzzSettings, runSurface, timeoutFor } from './runner.js';
import { upgrades } from './surface-upgrades.js';

const settings = fuzzSettings();

describe('invariants under fuzzed upgrades', () => {
  it(
    `every upgrade is answered as documented and the node keeps serving everyone (seed ${settings.seed})`,
    async () => {
      const { failures, batches } = await runSurface(upgrades, settings);
      expect(failures.join('\n\n'), `${batches} batches`).toBe('');
    },
    timeoutFor(settings),
  );
});
