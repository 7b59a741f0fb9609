/**
 * ChannelHistory's `recovered` rule (docs/design/cluster-store.md §2.6): a replay is exactly
 * `since+1 … head`, contiguous, or it is `recovered:false`; never a replay with a hole in it. Each
 * way a hole can reach an edge's ring has its regression test here (the ring alone: no socket
 * subscribes, so the app only answers "no subscribers"; the routes are test/integration's). Before the fix, `recover` sliced the ring by
 * offset arithmetic and answered these with a replay that skipped events.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChannelHistory, type Recovery } from '../../src/features/channels/edge/channel-history.js';
import type { ChannelSpec } from '../../src/features/channels/channel-config.js';
import type { ChannelEventRecord } from '../../src/features/channels/messages.js';
import { SharedStats } from '../../src/metrics/shared-stats.js';

const EPOCH = 'e1';
const spec = (historySize = 100, historyTtlS = 3600): ChannelSpec => ({ name: 'sensors', historySize, historyTtlS, azureHub: null });
const event = (offset: number, at = Date.now()): ChannelEventRecord => ({ channel: 'sensors', offset, at, userId: null, frames: [`event ${offset}`] });

/** What ChannelHistory asks of the uWS app when nothing is subscribed. */
const noSubscribers = { numSubscribers: () => 0, publish: () => false } as unknown as TemplatedApp;

function history(s: ChannelSpec = spec()) {
  const stats = SharedStats.create(1).edgeWriter(0);
  const h = new ChannelHistory(noSubscribers, [s], stats, () => {});
  return { h, holes: () => stats.get('channel_history_holes_total') };
}

/** Starts `h` as ingest's init would: the heads, then the history read back. */
function init(h: ChannelHistory, head: number, rows: ChannelEventRecord[]): void {
  h.onIngestMessage({ t: 'channels-init', epoch: EPOCH, heads: [['sensors', head]], history: rows });
}

const live = (h: ChannelHistory, ...offsets: number[]) => h.onIngestMessage({ t: 'channel-events', events: offsets.map((o) => event(o)) });

/** The offsets a replay holds, or the reason it is not one. */
function answer(h: ChannelHistory, since: number): number[] | string {
  const r: Recovery = h.recover('sensors', { offset: since, epoch: EPOCH });
  if (r.kind === 'replay') return r.entries.map((e) => e.offset);
  if (r.kind === 'unrecovered') return r.reason;
  return r.kind;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** For every since from 0 to the head: a contiguous replay to the head, or recovered:false. Never a hole. */
function neverAHole(h: ChannelHistory): void {
  const head = h.head('sensors');
  for (let since = 0; since <= head; since++) {
    const a = answer(h, since);
    if (typeof a === 'string') expect(a, `since ${since}`).toBe('history_exceeded');
    else expect(a, `since ${since}`).toEqual(range(since + 1, head));
  }
}

describe('ChannelHistory.recover: never recovered:true with a hole', () => {
  it('replays exactly since+1 … head from a contiguous history, and nothing at the head', () => {
    const { h, holes } = history();
    init(
      h,
      5,
      range(1, 5).map((o) => event(o)),
    );
    live(h, 6, 7);
    expect(answer(h, 2)).toEqual([3, 4, 5, 6, 7]);
    expect(answer(h, 0)).toEqual(range(1, 7));
    expect(answer(h, 7)).toEqual([]);
    expect(h.recover('sensors', { offset: 2, epoch: 'other' })).toEqual({ kind: 'unrecovered', reason: 'epoch_changed' });
    expect(holes()).toBe(0);
    neverAHole(h);
  });

  it('regression: a row missing inside the history read at start (the age bound dropped it after the clock stepped back)', () => {
    // history.sqlite's trim and recent() filter by `at` as well as by offset: a row taken while
    // the clock was behind is dropped from the middle. The ring got 1, 2, 3, 5, 6 under head 6, and
    // since=3 was answered recovered:true [5, 6] (4 missing), since=4 [6]... and since=5 [] (6 lost).
    const { h, holes } = history();
    init(
      h,
      6,
      [1, 2, 3, 5, 6].map((o) => event(o)),
    );
    expect(answer(h, 2)).toBe('history_exceeded');
    expect(answer(h, 3)).toBe('history_exceeded');
    expect(answer(h, 4)).toEqual([5, 6]);
    expect(answer(h, 5)).toEqual([6]);
    expect(h.oldest('sensors')).toBe(5); // the history starts after the hole
    expect(holes()).toBe(1);
    neverAHole(h);
  });

  it('regression: the history read at start ends before the head (its last rows were not read back)', () => {
    // The head row dropped by the age filter while the rows before it were kept: ring 1…4, head 6.
    // since=4 was answered recovered:true, replayed 0, without 5 and 6.
    const { h, holes } = history();
    init(
      h,
      6,
      range(1, 4).map((o) => event(o)),
    );
    for (const since of [0, 3, 4, 5]) expect(answer(h, since), `since ${since}`).toBe('history_exceeded');
    expect(answer(h, 6)).toEqual([]);
    expect(h.historyLength('sensors')).toBe(0);
    expect(holes()).toBe(1);
    live(h, 7);
    expect(answer(h, 6)).toEqual([7]);
    expect(answer(h, 5)).toBe('history_exceeded');
    neverAHole(h);
  });

  it('a history row that cannot be rendered at start (poison, already correct): ingest sends only what follows it; since before it is recovered:false', () => {
    // ChannelPipeline.initMessage drops the unrenderable row and everything before it; row 3 of 1…5 here.
    const { h, holes } = history();
    init(
      h,
      5,
      [4, 5].map((o) => event(o)),
    );
    expect(answer(h, 1)).toBe('history_exceeded');
    expect(answer(h, 2)).toBe('history_exceeded');
    expect(answer(h, 3)).toEqual([4, 5]);
    expect(holes()).toBe(0);
    // The unrenderable row was the head: nothing at all comes, and only since=head recovers.
    const last = history();
    init(last.h, 5, []);
    expect(answer(last.h, 4)).toBe('history_exceeded');
    expect(answer(last.h, 5)).toEqual([]);
    neverAHole(last.h);
  });

  it('regression: a live event that does not follow the head (an offset ingest did not deliver) starts the history again', () => {
    // Not sent by today's ingest (it numbers what it takes, one by one); once offsets come from the
    // store, a gap it could not repair (a trim) must not become a replay with a hole.
    const { h, holes } = history();
    init(
      h,
      3,
      range(1, 3).map((o) => event(o)),
    );
    live(h, 4, 6, 7);
    expect(answer(h, 3)).toBe('history_exceeded');
    expect(answer(h, 4)).toBe('history_exceeded');
    expect(answer(h, 5)).toEqual([6, 7]);
    expect(h.oldest('sensors')).toBe(6);
    expect(holes()).toBe(1);
    neverAHole(h);
  });

  it('regression: a copy (an offset at or below the head) is neither kept again nor replayed twice', () => {
    const { h } = history();
    init(
      h,
      3,
      range(1, 3).map((o) => event(o)),
    );
    live(h, 4, 4, 2, 5);
    expect(answer(h, 1)).toEqual([2, 3, 4, 5]);
    expect(h.historyLength('sensors')).toBe(5);
    neverAHole(h);
  });

  it('trimming by count (already correct) keeps the ring contiguous: since before the oldest is recovered:false', () => {
    const { h, holes } = history(spec(3));
    init(h, 0, []);
    live(h, ...range(1, 10));
    expect(h.oldest('sensors')).toBe(8);
    expect(answer(h, 6)).toBe('history_exceeded');
    expect(answer(h, 7)).toEqual([8, 9, 10]);
    expect(holes()).toBe(0);
    neverAHole(h);
  });

  describe('trimming by age', () => {
    beforeEach(() => void vi.useFakeTimers({ toFake: ['Date'] }));
    afterEach(() => void vi.useRealTimers());

    it('expires from the front only (already correct), also when `at` went back (a clock step): no hole', () => {
      const { h, holes } = history(spec(100, 10));
      const t = Date.now();
      // 1 is old; 3 was stamped by a clock 30 s behind, between 2 and 4: it stays until 2 expires.
      init(h, 4, [event(1, t - 20_000), event(2, t - 1_000), event(3, t - 30_000), event(4, t)]);
      expect(h.oldest('sensors')).toBe(2);
      expect(answer(h, 1)).toEqual([2, 3, 4]);
      expect(answer(h, 0)).toBe('history_exceeded');
      vi.setSystemTime(t + 9_500); // 2 is now too old: 2 and 3 go together
      expect(h.oldest('sensors')).toBe(4);
      expect(answer(h, 2)).toBe('history_exceeded');
      expect(answer(h, 3)).toEqual([4]);
      neverAHole(h);
      expect(holes()).toBe(0);
    });
  });
});

describe('ChannelHistory.whenAt: a since ahead of the head', () => {
  it('answers ahead, and calls back in the turn the head reaches the offset', () => {
    const { h } = history();
    init(
      h,
      3,
      range(1, 3).map((o) => event(o)),
    );
    expect(h.recover('sensors', { offset: 5, epoch: EPOCH })).toEqual({ kind: 'ahead', head: 3 });
    const seen: (number[] | string)[] = [];
    h.whenAt('sensors', 5, 1_000, (reached) => seen.push(reached ? answer(h, 5) : 'timeout'));
    live(h, 4);
    expect(seen).toEqual([]);
    live(h, 5, 6);
    expect(seen).toEqual([[6]]);
  });

  it('gives up after the timeout, and a cancelled wait never calls back', async () => {
    const { h } = history();
    init(h, 3, []);
    const seen: boolean[] = [];
    h.whenAt('sensors', 9, 20, (reached) => seen.push(reached));
    const cancel = h.whenAt('sensors', 4, 1_000, (reached) => seen.push(reached));
    cancel();
    live(h, 4);
    await new Promise((r) => setTimeout(r, 60));
    expect(seen).toEqual([false]);
    const at = [] as boolean[];
    h.whenAt('sensors', 4, 1_000, (reached) => at.push(reached));
    expect(at).toEqual([true]); // already there
  });
});
