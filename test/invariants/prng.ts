/**
 * The fuzzer's only source of randomness: mulberry32, a 32-bit generator small enough to read and
 * stable across Node versions, so a seed printed by a failing run reproduces the same inputs.
 * Each batch gets its own generator derived from (seed, surface, batch index): a batch's inputs do
 * not depend on how many batches ran before it, nor on timing.
 */
import { mulberry32 } from '../../scripts/gps-path.js';

/** FNV-1a over the text: the surface name and batch index folded into a seed. */
function fold(seed: number, text: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export class Rng {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  static forBatch(seed: number, surface: string, batch: number): Rng {
    return new Rng(fold(seed, `${surface}#${batch}`));
  }

  /** [0, 1) */
  float(): number {
    return this.next();
  }

  /** A whole number in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** Picks by weight: `[[weight, value], …]`. */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    const total = items.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of items) {
      r -= w;
      if (r < 0) return v;
    }
    return items[items.length - 1][1];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }

  /** A size in [0, max], log-uniform: most inputs small, some huge. */
  size(max: number): number {
    return Math.min(max, Math.floor(Math.exp(this.next() * Math.log(max + 1))) - 1);
  }
}
