/**
 * The CPU time of the calling thread (user + system), from Linux's /proc/thread-self/stat: Node 20
 * has no per-thread CPU clock, and a worker's event-loop utilization counts the time it waits for a
 * core as busy. undefined off Linux. Clock ticks are taken as 100 a second (Linux's USER_HZ).
 */
import { readFileSync } from 'node:fs';

const TICKS_PER_S = 100;
let unavailable = false;

export function threadCpuSeconds(): number | undefined {
  if (unavailable) return undefined;
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'latin1');
    // Field 2 (the name) may hold spaces: count from the closing parenthesis; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / TICKS_PER_S : undefined;
  } catch {
    unavailable = true;
    return undefined;
  }
}
