/**
 * Reconnect delays: exponential, capped, with full jitter (a random delay between 0 and the capped
 * exponential), so a thousand clients dropped by one restart do not come back in one wave. The
 * gateway's own rule (util/backoff.ts, its MQTT reconnects), with the client's defaults.
 */
import { fullJitterDelay } from '../util/backoff.js';

export interface BackoffOptions {
  /** First delay's ceiling, ms (default 500). */
  readonly initialDelayMs?: number;
  /** Largest ceiling, ms (default 30 000). */
  readonly maxDelayMs?: number;
  /** Attempts before giving up; the pet-care reference uses 5 (default: never give up). */
  readonly maxAttempts?: number;
}

/** The delay before reconnect attempt `attempt` (0-based). `random` is for tests. */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  return fullJitterDelay(attempt, options.initialDelayMs ?? 500, options.maxDelayMs ?? 30_000, random);
}
