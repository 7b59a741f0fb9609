/**
 * Fuzzes REST requests on every route against a running node; see
 * runner.ts for FUZZ_SEED, FUZZ_BUDGET_MS and FUZZ_BATCHES.
 */
import { describe, expect, it } from 'vitest';
import { fuzzSettings, runSurface, timeoutFor } from './runner.js';
import { rest } from './surface-rest.js';

const settings = fuzzSettings();

describe('invariants under fuzzed REST requests', () => {
  it(
    `every request is answered as documented and the node keeps serving everyone (seed ${settings.seed})`,
    async () => {
      const { failures, batches } = await runSurface(rest, settings);
      expect(failures.join('\n\n'), `${batches} batches`).toBe('');
    },
    timeoutFor(settings),
  );
});
