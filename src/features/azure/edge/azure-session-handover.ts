/**
 * The ordering side of a reliable session's handover, on an edge thread (azure-sessions.ts does the
 * session's part: handOver, adopt). Two threads of one node see ingest's traffic in one order; two
 * nodes do not (docs/design/cluster-presence.md §2). So:
 *
 *   - every Azure command this thread publishes carries a stamp (commands.ts): this thread's
 *     publisher id and its count of the commands it published on that hub (`stamp`);
 *   - every thread keeps, per hub, the last stamp it applied of each publisher, and of each
 *     hub-bound channel the last event offset (`c:<channel>`): its positions;
 *   - the asking thread holds the hub's traffic from `start` (`expect`) and sends its positions at
 *     that moment; the owner waits (at most CATCH_UP_MS, counted) until its own positions reach them
 *     (`whenCaughtUp`), hands the session over, and sends its positions at that moment;
 *   - the asking thread drops what it held at or below the owner's positions (the owner applied it)
 *     and applies the rest (`release`).
 *
 * Commands without a stamp (published on the bus by something else than a gateway) cannot be
 * placed: the held ones are all applied, as in the one-node case.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { ChannelEventRecord } from '../../channels/messages.js';
import { stampAzureMessage, type AzureCommand, type CommandStamp } from '../commands.js';
import type { RenderedMessage } from '../frames.js';
import type { Positions } from '../messages.js';

/** What a thread waiting for a handed-over session holds aside for it, in arrival order. */
export type Held =
  { readonly command: AzureCommand; readonly message: RenderedMessage | null; readonly stamp?: CommandStamp } | { readonly event: ChannelEventRecord };

/** How long an owner waits for its positions to reach the asker's before handing over anyway. */
export const CATCH_UP_MS = 2000;
/** Publishers remembered per hub (a restarted thread is a new publisher); the oldest go first. */
const MAX_KEYS_PER_HUB = 4096;

function positionOf(held: Held): [string, number] | null {
  if ('event' in held) return [`c:${held.event.channel}`, held.event.offset];
  return held.stamp === undefined ? null : [held.stamp.p, held.stamp.s];
}

interface Waiter {
  readonly hub: string;
  readonly wanted: Positions;
  readonly run: (timedOut: boolean) => void;
  readonly timer: NodeJS.Timeout;
}

export class SessionHandover {
  private readonly positions = new Map<string, Map<string, number>>();
  /** Handovers asked for (by request id): the hub's traffic since ingest forwarded the question. */
  private readonly awaiting = new Map<number, { readonly hub: string; readonly held: Held[] }>();
  private waiters: Waiter[] = [];

  constructor(
    private readonly stats: Pick<RowWriter<EdgeMetric>, 'inc'>,
    private readonly logger: Pick<Logger, 'info' | 'warn'>,
  ) {}

  /** A command or event of `hub` is about to be applied: it moves this thread's positions, and is held for each handover awaited on the hub. */
  arrived(hub: string, held: Held): void {
    const at = positionOf(held);
    if (at !== null) {
      let map = this.positions.get(hub);
      if (map === undefined) this.positions.set(hub, (map = new Map<string, number>()));
      if ((map.get(at[0]) ?? 0) < at[1]) {
        if (!map.has(at[0]) && map.size >= MAX_KEYS_PER_HUB) map.delete(map.keys().next().value!);
        map.set(at[0], at[1]);
      }
    }
    if (this.awaiting.size === 0) return;
    for (const waiting of this.awaiting.values()) if (waiting.hub === hub) waiting.held.push(held);
  }

  /** The command or event `arrived` announced is applied: an owner waiting for it hands over now. */
  applied(hub: string): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.hub === hub && this.missing(hub, w.wanted).length === 0);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) {
      clearTimeout(w.timer);
      w.run(false);
    }
  }

  /** This thread's positions in a hub's traffic. */
  positionsOf(hub: string): Positions {
    return [...(this.positions.get(hub) ?? [])];
  }

  /** The wanted positions this thread has not reached. */
  missing(hub: string, wanted: Positions): Positions {
    const map = this.positions.get(hub);
    return wanted.filter(([key, n]) => (map?.get(key) ?? 0) < n);
  }

  /** Owner side: `run` once this thread's positions reach `wanted` (now if they do), or after CATCH_UP_MS. */
  whenCaughtUp(hub: string, wanted: Positions, run: (timedOut: boolean) => void): void {
    if (this.missing(hub, wanted).length === 0) {
      run(false);
      return;
    }
    const waiter: Waiter = {
      hub,
      wanted,
      run,
      timer: setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        this.stats.inc('azure_handover_catchup_timeouts_total');
        this.logger.warn({ hub, missing: this.missing(hub, wanted).slice(0, 10) }, 'azure handover: gave up waiting for the asking node’s commands');
        run(true);
      }, CATCH_UP_MS),
    };
    this.waiters.push(waiter);
  }

  /** Asking side: ingest forwarded request `id`; hold this hub's traffic from now until `release`. */
  expect(id: number, hub: string): void {
    this.awaiting.set(id, { hub, held: [] });
  }

  /**
   * Asking side: what was held for request `id`, in order, but what the owner had applied when it
   * handed over (at or below its `positions`; none given: everything held, the one-node case).
   */
  release(id: number, positions?: Positions): Held[] {
    const waiting = this.awaiting.get(id);
    this.awaiting.delete(id);
    if (waiting === undefined) return [];
    if (positions === undefined) return waiting.held;
    const owner = new Map(positions);
    const replay = waiting.held.filter((held) => {
      const at = positionOf(held);
      return at === null || at[1] > (owner.get(at[0]) ?? 0);
    });
    const dropped = waiting.held.length - replay.length;
    this.logger.info({ hub: waiting.hub, replayed: replay.length, dropped }, 'azure session from another node: held commands replayed');
    return replay;
  }

  stop(): void {
    for (const w of this.waiters) clearTimeout(w.timer);
    this.waiters = [];
  }
}

/**
 * This thread's publishes of Azure commands (`<topic>/<hub>`), stamped: one publisher id per thread
 * start, one count per hub. Other topics (the client events for backends) pass as they are.
 */
export function stampingPublish(
  azureTopic: string,
  publish: (topic: string, payload: string | Uint8Array) => void,
): (topic: string, payload: string | Uint8Array) => void {
  const publisher = randomBytes(9).toString('base64url');
  const counts = new Map<string, number>();
  const prefix = `${azureTopic}/`;
  return (topic, payload) => {
    if (!topic.startsWith(prefix) || topic.indexOf('/', prefix.length) >= 0) return publish(topic, payload);
    const hub = topic.slice(prefix.length);
    const s = (counts.get(hub) ?? 0) + 1;
    counts.set(hub, s);
    publish(topic, stampAzureMessage(payload, { p: publisher, s }));
  };
}
