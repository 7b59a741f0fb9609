/**
 * Exponential backoff with full jitter (delay = random(0, min(cap, base * 2^attempt))), the
 * variant that spreads a reconnect storm best. `random` is injectable for tests. No Node imports:
 * the browser client (src/client) uses it too.
 */
export function fullJitterDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** The same, counting its own attempts. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs: number,
    private readonly capMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    return fullJitterDelay(this.attempt++, this.baseMs, this.capMs, this.random);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
