/**
 * Fuzzes client frames on open connections of every WebSocket route against a running node; see
 * runner.ts for FUZZ_SEED, FUZZ_BUDGET_MS and FUZZ_BATCHES.
 */
import { describe, expect, it } from 'vitest';
import { fuzzSettings, runSurface, timeoutFor } from './runner.js';
import { frames } from './surface-frames.js';

const settings = fuzzSettings();

describe('invariants under fuzzed frames', () => {
  it(
    `every frame is answered as documented and the node keeps serving everyone (seed ${settings.seed})`,
    async () => {
      const { failures, batches } = await runSurface(frames, settings);
      expect(failures.join('\n\n'), `${batches} batches`).toBe('');
    },
    timeoutFor(settings),
  );
});
