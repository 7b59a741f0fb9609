/**
 * Runs one fuzz surface against a fresh node: batches of generated inputs until the time budget
 * is spent (or exactly the batches FUZZ_BATCHES names), the invariants checked after each batch.
 * A failing batch is reported with its seed, its inputs and the command that replays it; the node
 * is then replaced and fuzzing goes on (up to FUZZ_MAX_FAILURES reports), so one run shows every
 * kind of failure it meets, not only the first.
 *
 *   FUZZ_SEED        the seed (default 13, fixed, so `npm test` is repeatable; `random`: a fresh one)
 *   FUZZ_BUDGET_MS   time for all four surfaces together (default 24000: 6 s each)
 *   FUZZ_BATCHES     `n` (batches 0..n-1) or `a-b`: exactly these batches, whatever the time
 *   FUZZ_MAX_FAILURES  failing batches reported before a surface stops (default 3)
 *   FUZZ_SHRINK      how many failing batches get their culprit looked for (the batch replayed one
 *                    input at a time on a fresh node): the first (default), `all`, or none (`0`)
 */
import { randomInt } from 'node:crypto';
import { Rng } from './prng.js';
import { addExpectations, noExpectations, startFuzzNode, type Expectations, type FuzzNode } from './fuzz-node.js';

export const SURFACES = 4;
export const DEFAULT_SEED = 13;
const DEFAULT_BUDGET_MS = 24_000;

export interface InputResult {
  readonly problems: readonly string[];
  readonly expect?: Partial<Expectations>;
}

export interface FuzzInput {
  /** What it sends, short enough for a report. */
  readonly label: string;
  run(node: FuzzNode): Promise<InputResult>;
}

export interface Surface {
  readonly name: string;
  /** The test file, for the reproduce line. */
  readonly file: string;
  /** Inputs run at once within a batch. */
  readonly concurrency: number;
  readonly env?: Record<string, string>;
  generate(rng: Rng, node: FuzzNode): FuzzInput[];
}

export interface FuzzSettings {
  readonly seed: number;
  readonly budgetMs: number;
  readonly batches: { readonly from: number; readonly to: number } | null;
  readonly maxFailures: number;
}

function parseSeed(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_SEED;
  if (text === 'random') return randomInt(0, 2 ** 31);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`FUZZ_SEED must be a whole number or "random" (got ${JSON.stringify(text)})`);
  return n >>> 0;
}

function parseBatches(text: string | undefined): FuzzSettings['batches'] {
  if (text === undefined || text === '') return null;
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (m === null) throw new Error(`FUZZ_BATCHES must be n or a-b (got ${JSON.stringify(text)})`);
  return m[2] === undefined ? { from: 0, to: Number(m[1]) - 1 } : { from: Number(m[1]), to: Number(m[2]) };
}

/** Read once per test file, at collection, so the seed can be in the test's name. */
export function fuzzSettings(): FuzzSettings {
  const budget = Number(process.env.FUZZ_BUDGET_MS ?? DEFAULT_BUDGET_MS);
  if (!Number.isFinite(budget) || budget < 0) throw new Error(`FUZZ_BUDGET_MS must be a number of ms (got ${process.env.FUZZ_BUDGET_MS})`);
  return {
    seed: parseSeed(process.env.FUZZ_SEED),
    budgetMs: budget / SURFACES,
    batches: parseBatches(process.env.FUZZ_BATCHES),
    maxFailures: Number(process.env.FUZZ_MAX_FAILURES ?? 3),
  };
}

/** The test's own timeout: the budget, and room for the node restarts failures cause. */
export const timeoutFor = (s: FuzzSettings) => (s.batches === null ? s.budgetMs : 120_000) + 30_000 + s.maxFailures * 20_000;

/** No single input may take longer than this (its own waits are shorter): past it, something hangs. */
const INPUT_LIMIT_MS = 20_000;

async function bounded<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function runPool<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i], i);
      }
    }),
  );
}

/** Same problem for several inputs (everything after a crash, say): one line naming them all; deaths first. */
function grouped(problems: readonly string[]): string[] {
  const byText = new Map<string, string[]>();
  for (const p of problems) {
    const m = /^(#\d+): ([\s\S]*)$/.exec(p);
    const [who, what] = m === null ? ['', p] : [m[1], m[2]];
    byText.set(what, [...(byText.get(what) ?? []), who]);
  }
  const lines = [...byText].map(([what, who]) => `${who.filter((w) => w !== '').join(' ')}${who.some((w) => w !== '') ? ': ' : ''}${what}`);
  return lines.sort((a, b) => Number(b.includes('process died')) - Number(a.includes('process died')));
}

function report(surface: Surface, s: FuzzSettings, batch: number, nodeFrom: number, inputs: readonly FuzzInput[], all: readonly string[]): string {
  const problems = grouped(all);
  const lines = [
    `[fuzz ${surface.name}] seed ${s.seed}, batch ${batch}: ${all.length} problem(s)`,
    `  reproduce: FUZZ_SEED=${s.seed} FUZZ_BATCHES=${nodeFrom}-${batch} npx vitest run ${surface.file}`,
    '  problems:',
    ...problems.slice(0, 25).map((p) => `    - ${p.slice(0, 400)}`),
    ...(problems.length > 25 ? [`    … and ${problems.length - 25} more`] : []),
    `  inputs of batch ${batch} (${inputs.length}):`,
    ...inputs.slice(0, 60).map((input, i) => `    #${i} ${input.label}`),
  ];
  return lines.join('\n');
}

/** Looking for the culprit costs a node and a replay: by default for a surface's first failure only. */
const shrinks = (failuresSoFar: number) => process.env.FUZZ_SHRINK === 'all' || (process.env.FUZZ_SHRINK !== '0' && failuresSoFar === 0);

const CULPRIT_LIMIT_MS = 30_000;

/**
 * Which input breaks the node by itself: the batch's inputs replayed one at a time on a fresh node,
 * the process probed (`death`) or the whole invariant check run (`wedge`) after each, until one
 * fails, within CULPRIT_LIMIT_MS. In `wedge` mode the order is the batch's, so the one named is the
 * first after which the invariants fail (those before it ran too).
 */
async function culprit(surface: Surface, suspects: readonly (readonly [number, FuzzInput])[], mode: 'death' | 'wedge'): Promise<string[]> {
  if (suspects.length === 0) return [];
  const node = await startFuzzNode(surface.env);
  const deadline = Date.now() + CULPRIT_LIMIT_MS;
  try {
    for (const [i, input] of suspects) {
      if (Date.now() > deadline) return [`(stopped looking for the culprit after ${CULPRIT_LIMIT_MS / 1000} s, at #${i})`];
      const before = await node.counters();
      const result = await bounded(input.run(node), INPUT_LIMIT_MS).catch((): InputResult => ({ problems: [] }));
      let broken: string[];
      if (mode === 'death') {
        await new Promise((r) => setTimeout(r, 500));
        broken =
          !node.alive() ||
          !(await node.counters().then(
            () => true,
            () => false,
          ))
            ? [`ends the process; stderr: ${node.stderr().trim().slice(-600)}`]
            : [];
      } else {
        const expected = noExpectations();
        if (result.expect) addExpectations(expected, result.expect);
        broken = await node.check(before, expected);
      }
      if (broken.length > 0) return [`replayed one at a time on a fresh node, #${i} breaks it (${broken.slice(0, 4).join('; ')}): ${input.label}`];
    }
    return ['replayed one at a time on a fresh node, no single input broke it (an interaction between inputs, or timing)'];
  } finally {
    await node.stop();
  }
}

/** First the inputs whose own answer looked like the death (a reset, a cut, silence), then those in flight, then the rest. */
function deathSuspects(inputs: readonly FuzzInput[], own: readonly string[][], inFlight: readonly number[]): (readonly [number, FuzzInput])[] {
  const looksLikeIt = (ps: readonly string[]) => ps.some((p) => /not answered|closed without an answer|1006|within \d+ (ms|s)|ECONN/.test(p));
  const order = [...inputs.keys()].filter((i) => looksLikeIt(own[i] ?? []));
  for (const i of [...inFlight, ...inputs.keys()]) if (!order.includes(i)) order.push(i);
  return order.map((i) => [i, inputs[i]] as const);
}

/** Fuzzes one surface; resolves with the failure reports ([] when every invariant held). */
export async function runSurface(surface: Surface, s: FuzzSettings): Promise<{ failures: string[]; batches: number }> {
  const failures: string[] = [];
  const started = Date.now();
  const first = s.batches?.from ?? 0;
  const more = (batch: number) => (s.batches !== null ? batch <= s.batches.to : Date.now() - started < s.budgetMs || batch === first);
  let node = await startFuzzNode(surface.env);
  let nodeFrom = first;
  let batch = first;
  for (; more(batch) && failures.length < s.maxFailures; batch++) {
    const rng = Rng.forBatch(s.seed, surface.name, batch);
    const inputs = surface.generate(rng, node);
    const expected = noExpectations();
    const problems: string[] = [];
    const before = await node.counters().catch((err: Error) => {
      problems.push(`the gateway did not answer GET /metrics before the batch: ${err.message}`);
      return {};
    });
    const spans: { start: number; end: number }[] = [];
    const owns: string[][] = [];
    const ran = problems.length === 0;
    if (ran) {
      await runPool(inputs, surface.concurrency, async (input, i) => {
        spans[i] = { start: Date.now(), end: Number.POSITIVE_INFINITY };
        const own: string[] = [];
        try {
          const result = await bounded(input.run(node), INPUT_LIMIT_MS);
          own.push(...result.problems);
          if (result.expect) addExpectations(expected, result.expect);
        } catch (err) {
          own.push(
            (err as Error).message === `did not finish within ${INPUT_LIMIT_MS} ms`
              ? (err as Error).message
              : `the input's own code failed: ${(err as Error).stack ?? String(err)}`,
          );
        }
        spans[i].end = Date.now();
        owns[i] = own;
        const died = node.diedAt();
        // What an input saw after the process died is the death, not its own finding.
        if (died === null || spans[i].end < died) for (const p of own) problems.push(`#${i}: ${p}`);
      });
    }
    const global = ran ? await node.check(before, expected) : [];
    problems.push(...global);
    if (problems.length > 0) {
      const died = node.diedAt();
      if (died !== null && spans.length > 0) {
        const inFlight = spans.map((sp, i) => (sp !== undefined && sp.start <= died && sp.end >= died ? i : -1)).filter((i) => i >= 0);
        problems.push(`inputs in flight when the gateway went away: ${inFlight.map((i) => `#${i}`).join(' ') || 'none (after the batch)'}`);
        if (shrinks(failures.length)) problems.push(...(await culprit(surface, deathSuspects(inputs, owns, inFlight), 'death')));
      } else if (global.length > 0 && shrinks(failures.length)) {
        problems.push(
          ...(await culprit(
            surface,
            inputs.map((input, i) => [i, input] as const),
            'wedge',
          )),
        );
      }
      failures.push(report(surface, s, batch, nodeFrom, inputs, problems));
      await node.stop();
      if (failures.length < s.maxFailures && more(batch + 1)) {
        node = await startFuzzNode(surface.env);
        nodeFrom = batch + 1;
      }
    }
  }
  return { failures, batches: batch - first };
}
