/**
 * Token buckets for rate limits: `rate` tokens a second up to `burst`. State is two numbers so it
 * can live in a socket's userData; `KeyedBuckets` keeps one per key (client IP) and forgets idle ones.
 */
interface BucketState {
  tokens: number;
  at: number;
}

export function take(state: BucketState, rate: number, burst: number, now: number): boolean {
  state.tokens = Math.min(burst, state.tokens + ((now - state.at) / 1000) * rate);
  state.at = now;
  if (state.tokens < 1) return false;
  state.tokens -= 1;
  return true;
}

export class KeyedBuckets {
  private readonly buckets = new Map<string, BucketState>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  take(key: string, now = Date.now()): boolean {
    let state = this.buckets.get(key);
    if (state === undefined) {
      state = { tokens: this.burst, at: now };
      this.buckets.set(key, state);
    }
    return take(state, this.rate, this.burst, now);
  }

  /** Drops buckets that have refilled completely (nothing to remember). */
  sweep(now = Date.now()): void {
    for (const [key, state] of this.buckets) {
      if (state.tokens + ((now - state.at) / 1000) * this.rate >= this.burst) this.buckets.delete(key);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}
