/** threadCpuSeconds (threads/thread-cpu.ts): this thread's CPU time from /proc/thread-self, growing with work done on it. */
import { describe, expect, it } from 'vitest';
import { threadCpuSeconds } from '../../src/threads/thread-cpu.js';

describe.runIf(process.platform === 'linux')('threadCpuSeconds', () => {
  it('reads this thread’s CPU time, which grows with a busy loop on it', () => {
    const before = threadCpuSeconds()!;
    expect(before).toBeGreaterThanOrEqual(0);
    const end = performance.now() + 150;
    let x = 0;
    while (performance.now() < end) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    // 150 ms of wall time on a busy, shared box: at least a few ticks of it on a core.
    expect(threadCpuSeconds()!).toBeGreaterThan(before);
  });
});
