/**
 * The main thread's watchdog. Every beat (a fifth of GATEWAY_WATCHDOG_MS, at most 1 s) it writes
 * its own heartbeat and the pools' progress marks, sends an idle pool its probe task, and reads
 * every thread's progress (threads/progress.ts). A thread without progress for the bound is logged
 * once (the edges' /readyz and /healthz answer 503 from the same marks); one without progress for
 * twice the bound ends the process through `onFatal` (exit 70), for its supervisor to restart it:
 * a thread cannot be restarted in place (ingest's ports to the edges were transferred at start,
 * and an edge holds its share of the listening port).
 */
import type { Logger } from 'pino';
import type { HealthConfig } from '../config/config.js';
import type { SharedStats } from '../metrics/shared-stats.js';
import { beatIntervalMs, findStalls } from './progress.js';

/** What the watchdog needs of a pool (pool/fixed-pool.ts). */
export interface WatchedPool {
  waitingSinceMs(): number;
  probe(): void;
}

export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  private readonly reported = new Set<string>();

  constructor(
    private readonly stats: SharedStats,
    private readonly config: HealthConfig,
    private readonly pools: { readonly token: WatchedPool | undefined; readonly store: WatchedPool },
    private readonly logger: Logger,
    private readonly onFatal: (reason: string) => void,
  ) {}

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), beatIntervalMs(this.config.watchdogMs));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = Date.now();
    const { stats, pools } = this;
    stats.setMark('main_beat_ms', now);
    if (pools.token) {
      stats.setMark('main_token_pool_waiting_ms', pools.token.waitingSinceMs());
      pools.token.probe();
    }
    stats.setMark('main_store_pool_waiting_ms', pools.store.waitingSinceMs());
    pools.store.probe();

    const bound = this.config.watchdogMs;
    const stalls = findStalls(stats, now, bound, pools.token !== undefined);
    for (const stall of stalls) {
      if (this.reported.has(stall.thread)) continue;
      this.reported.add(stall.thread);
      this.logger.error({ stalled: stall.thread, ageMs: stall.ageMs, watchdogMs: bound }, stall.reason);
    }
    for (const thread of this.reported) {
      if (stalls.some((s) => s.thread === thread)) continue;
      this.reported.delete(thread);
      this.logger.warn({ recovered: thread }, 'thread making progress again');
    }
    const fatal = stalls.find((s) => s.ageMs > 2 * bound);
    if (fatal) {
      this.stop();
      this.onFatal(`${fatal.reason}; the watchdog gives up after ${2 * bound} ms (GATEWAY_WATCHDOG_MS x 2)`);
    }
  }
}
