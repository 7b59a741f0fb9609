/**
 * Whether every thread is making progress, read from the watchdog's marks in the shared stats.
 * One function for every reader: /readyz and /healthz on any edge, /metrics, and the main thread's
 * watchdog (threads/watchdog.ts), so they all tell the same story.
 *
 *   main, ingest, edge-N  a heartbeat written from a timer in the thread's own event loop: a thread
 *                         that is dead, busy-looping or blocked stops writing it
 *   ingest-mqtt           the MQTT probe: ingest publishes to its own probe topic and marks when it
 *                         comes back through the same message handler as telemetry, so a client
 *                         that stopped delivering while the event loop still turns is seen too;
 *                         judged only while connected and subscribed
 *   token-pool, store-pool since when the pool has had work waiting and finished nothing (the main
 *                         thread also sends a tiny probe task now and then, so an idle pool is judged)
 */
import type { SharedStats } from '../metrics/shared-stats.js';

export interface ThreadProgress {
  /** `main`, `ingest`, `ingest-mqtt`, `edge-<i>`, `token-pool`, `store-pool`. */
  readonly thread: string;
  /** Ms since it last showed progress; 0 when it is not judged (not started, idle, or not subscribed). */
  readonly ageMs: number;
}

export interface Stall {
  readonly thread: string;
  readonly ageMs: number;
  /** For operators: `ingest thread not making progress for 12 s`. */
  readonly reason: string;
}

const since = (now: number, mark: number) => (mark > 0 ? Math.max(0, now - mark) : 0);

export function threadProgress(stats: SharedStats, now: number, tokenPool: boolean): ThreadProgress[] {
  const out: ThreadProgress[] = [
    { thread: 'main', ageMs: since(now, stats.mark('main_beat_ms')) },
    { thread: 'ingest', ageMs: since(now, stats.mark('ingest_beat_ms')) },
  ];
  const probing = stats.mark('ingest_probe_since_ms');
  out.push({ thread: 'ingest-mqtt', ageMs: probing > 0 ? since(now, Math.max(probing, stats.mark('ingest_probe_seen_ms'))) : 0 });
  for (let e = 0; e < stats.edges; e++) out.push({ thread: `edge-${e}`, ageMs: since(now, stats.edgeBeat(e)) });
  if (tokenPool) out.push({ thread: 'token-pool', ageMs: since(now, stats.mark('main_token_pool_waiting_ms')) });
  out.push({ thread: 'store-pool', ageMs: since(now, stats.mark('main_store_pool_waiting_ms')) });
  return out;
}

function describe(thread: string, ageMs: number): string {
  const s = (ageMs / 1000).toFixed(ageMs < 10_000 ? 1 : 0);
  switch (thread) {
    case 'ingest-mqtt':
      return `ingest thread's MQTT client not delivering for ${s} s (the watchdog probe did not come back)`;
    case 'token-pool':
      return `token-check pool not making progress for ${s} s`;
    case 'store-pool':
      return `store pool not making progress for ${s} s`;
    default:
      return `${thread} thread not making progress for ${s} s`;
  }
}

/** The threads without progress for longer than `boundMs`; none while shutting down. */
export function findStalls(stats: SharedStats, now: number, boundMs: number, tokenPool: boolean): Stall[] {
  if (stats.getGlobal('shutting_down') === 1) return [];
  const progress = threadProgress(stats, now, tokenPool);
  const stalled = (thread: string) => progress.some((p) => p.thread === thread && p.ageMs > boundMs);
  const stalls: Stall[] = [];
  for (const p of progress) {
    if (p.ageMs <= boundMs) continue;
    // A stopped ingest thread stops its probe marks too: name the thread, not its client.
    if (p.thread === 'ingest-mqtt' && stalled('ingest')) continue;
    // The pools' marks are the main thread's: a stopped main thread freezes them.
    if ((p.thread === 'token-pool' || p.thread === 'store-pool') && stalled('main')) continue;
    stalls.push({ thread: p.thread, ageMs: p.ageMs, reason: describe(p.thread, p.ageMs) });
  }
  return stalls;
}

/** How often threads write their heartbeat and the watchdog looks: a fifth of the bound, 50 ms to 1 s. */
export function beatIntervalMs(watchdogMs: number): number {
  return Math.min(1000, Math.max(50, Math.round(watchdogMs / 5)));
}
