/**
 * Reads a target's memory by thread (the probe each thread runs, memory-probe.cts) and by mapping
 * (/proc/<pid>/smaps): what the memory scenario reports besides the process's RSS.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/** One thread's V8 heap, in bytes (the probe's record). */
export interface ThreadSample {
  readonly thread: string;
  readonly threadId: number;
  readonly request: number;
  readonly gc: boolean;
  /** Live objects (after a GC when `gc`). */
  readonly heapUsed: number;
  /** What V8 has reserved for the heap, and the part of it that is resident. */
  readonly heapTotal: number;
  readonly heapPhysical: number;
  /** V8's own malloc (outside the heap), and memory held by JS objects outside it (Buffers). */
  readonly mallocedMemory: number;
  readonly externalMemory: number;
  readonly arrayBuffers: number;
  /** The thread's young generation limit (its Worker's resourceLimits: 48 by default); 0 on the main thread. */
  readonly maxYoungGenerationSizeMb: number;
  readonly spaces: Readonly<Record<string, { readonly size: number; readonly used: number; readonly physical: number }>>;
}

/** Resident memory by kind of mapping, in bytes. */
export interface MappingBreakdown {
  /** Anonymous memory: V8 heaps, malloc arenas, thread stacks, uWS and SQLite allocations. */
  readonly anonymous: number;
  /** Resident pages of each mapped file (the node binary, native addons), largest first. */
  readonly files: ReadonlyArray<{ readonly file: string; readonly bytes: number }>;
}

export const PROBE_SCRIPT = join('dist', 'bench', 'load', 'memory-probe.cjs');

export class MemoryProbe {
  readonly dir = mkdtempSync(join(tmpdir(), 'bench-memory-probe-'));
  private requests = 0;

  /** Node options and environment that load the probe into a target (every thread). */
  execArgv(repoRoot: string): string[] {
    return ['--expose-gc', '--require', join(repoRoot, PROBE_SCRIPT)];
  }

  get env(): Record<string, string> {
    return { BENCH_MEMORY_PROBE_DIR: this.dir };
  }

  /**
   * Asks every thread for its heap (after a full GC when `gc`; 'snapshot': and a heap snapshot
   * in `dir`) and resolves once each thread that
   * ever reported has answered, or after `timeoutMs` with those that did.
   */
  async sample(gc: boolean | 'snapshot', timeoutMs = gc === 'snapshot' ? 120_000 : 5000): Promise<ThreadSample[]> {
    const request = ++this.requests;
    writeFileSync(join(this.dir, 'request'), `${request}${gc === 'snapshot' ? ' snapshot' : gc ? ' gc' : ''}`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const samples = this.read();
      if (samples.every((s) => s.request === request) || Date.now() > deadline) return samples.filter((s) => s.request === request).sort(byThread);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private read(): ThreadSample[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as ThreadSample);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const ORDER = ['main', 'ingest', 'edge', 'token pool', 'store pool'];
const rank = (t: string) => ORDER.findIndex((o) => t.startsWith(o));
const byThread = (a: ThreadSample, b: ThreadSample) => rank(a.thread) - rank(b.thread) || a.threadId - b.threadId;

/** Sums /proc/<pid>/smaps by mapping: anonymous, and each file. Undefined off Linux. */
export function mappingBreakdown(pid: number): MappingBreakdown | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'latin1');
  } catch {
    return undefined;
  }
  let anonymous = 0;
  const files = new Map<string, number>();
  let current = '';
  for (const line of text.split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      current = header[1];
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss) continue;
    const bytes = Number(rss[1]) * 1024;
    if (current.startsWith('/')) files.set(basename(current), (files.get(basename(current)) ?? 0) + bytes);
    else anonymous += bytes; // '', [heap], [stack], [anon:…]
  }
  return {
    anonymous,
    files: [...files].map(([file, bytes]) => ({ file, bytes })).sort((a, b) => b.bytes - a.bytes),
  };
}
