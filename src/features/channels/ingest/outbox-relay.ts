/**
 * The outbox relay: publishes outbox rows to the bus in id order (QoS 1) and counts a row as
 * delivered only when it comes back from the bus to this node's own subscription, which is the
 * proof that every node can receive it. The channel pipeline reports that (`confirmed`) and the
 * row is deleted in the same transaction that writes the event's history.
 *
 * Every message is stamped with its origin: this node, the row's id and the id published before it
 * (`prev`), so each receiver can tell a duplicate (`seq` already taken) from a gap (`prev` is not the
 * last one it took). If nothing comes back for GATEWAY_OUTBOX_RETRY_MS, after a reconnect, or when a
 * gap shows, the relay rewinds and publishes again from the first unconfirmed row; receivers drop the
 * copies they already have. A broker outage therefore delays events and loses none.
 *
 * A row is never retried forever. The channel pipeline dead-letters a row of this node that came
 * back and was refused (deadLetter), and counts a miss (gap) each time later rows came back
 * while the first unconfirmed row, published before them, did not: at OUTBOX_MAX_ATTEMPTS misses
 * the row is dead-lettered too (store/dead-letters.ts). Only this evidence counts: timeouts and
 * reconnects (an outage, a broker that delivers nothing) never do.
 */
import type { Logger } from 'pino';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import { stampPrefix } from '../outbox-event.js';
import { OUTBOX_MAX_ATTEMPTS } from '../store/dead-letters.js';
import type { EventLog } from '../store/event-log.js';

/** Rows in flight (published, not yet back) at most. */
const WINDOW = 500;
const TICK_MS = 100;
/** A gap asks for a rewind; more than one per this interval would only republish the same rows. */
const MIN_REWIND_INTERVAL_MS = 250;

interface RelayBus {
  readonly connected: boolean;
  publish(topic: string, payload: string): void;
}

export class OutboxRelay {
  private confirmedUpTo: number;
  private sentUpTo: number;
  private lastProgressAt = Date.now();
  private lastRewindAt = 0;
  private readonly timer: NodeJS.Timeout;
  /** The first unconfirmed row as last published, whether it is out since the last miss, and its misses. */
  private headId = 0;
  private headOut = false;
  private headMisses = 0;

  constructor(
    private readonly log: EventLog,
    private readonly nodeId: string,
    private readonly topicPrefix: string,
    private readonly bus: RelayBus,
    private readonly retryMs: number,
    private readonly stats: RowWriter<IngestMetric>,
    private readonly logger: Logger,
  ) {
    this.confirmedUpTo = log.origins().get(nodeId) ?? 0;
    this.sentUpTo = this.confirmedUpTo;
    this.stats.set('outbox_dead_letters', log.deadLetters.count());
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** The last outbox id known delivered (the pipeline's duplicate filter starts from it). */
  get confirmed(): number {
    return this.confirmedUpTo;
  }

  private pumpScheduled = false;

  /** Rows were written (a nudge from an edge after a write): publish them at the end of this turn, once for all nudges. */
  nudge(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Publishes unsent rows now, as far as the window allows. */
  pump(): void {
    if (!this.bus.connected) return;
    const room = WINDOW - (this.sentUpTo - this.confirmedUpTo);
    if (room <= 0) return;
    const rows = this.log.pending(this.sentUpTo, room);
    for (const row of rows) {
      if (this.sentUpTo === this.confirmedUpTo) {
        // The first unconfirmed row goes out (again).
        if (row.id !== this.headId) {
          this.headId = row.id;
          this.headMisses = 0;
        }
        this.headOut = true;
      }
      // Splice the origin in front of the stored event's fields: no parse/stringify round trip.
      // (String(): a row written by hand may hold anything; the pipeline refuses it by its stamp.)
      this.bus.publish(`${this.topicPrefix}/${row.channel}`, stampPrefix(this.nodeId, row.id, this.sentUpTo) + String(row.payload).slice(1));
      this.sentUpTo = row.id;
    }
    if (rows.length > 0) this.stats.inc('outbox_published_total', rows.length);
  }

  /** This node's event `seq` came back from the bus and was taken. */
  confirm(seq: number): void {
    this.confirmedUpTo = seq;
    if (this.sentUpTo < seq) this.sentUpTo = seq;
    this.lastProgressAt = Date.now();
  }

  /**
   * One of this node's rows came back after a gap: it was published after `prev`, and rows up to
   * `prev` are not all back. Publishes again from the first unconfirmed row (at most once per
   * MIN_REWIND_INTERVAL_MS: the other rows of a pass report the same gap). The first gap after a
   * pass published that row is a miss for it (one per pass; its arrival resets them): at its
   * OUTBOX_MAX_ATTEMPTS-th consecutive miss its id is returned instead, and the caller passes over
   * it and calls deadLetter.
   */
  gap(prev: number): number | null {
    if (this.headOut && this.headId > this.confirmedUpTo && prev >= this.headId) {
      this.headOut = false;
      if (++this.headMisses >= OUTBOX_MAX_ATTEMPTS) return this.headId;
    }
    this.rewind('gap on the way back from the bus');
    return null;
  }

  /** Moves row `seq` to the dead letters (its successors go on); it counts as done from here. */
  deadLetter(seq: number, reason: string): void {
    const moved = this.log.deadLetters.move(seq, reason);
    if (moved) {
      this.stats.inc('outbox_dead_lettered_total');
      this.stats.set('outbox_dead_letters', this.log.deadLetters.count());
      this.logger.warn({ id: seq, reason }, 'outbox: row moved to the dead letters (GET /api/v1/outbox/dead-letters)');
    }
    if (seq > this.confirmedUpTo) this.confirm(seq);
  }

  /** Publish again from the first unconfirmed row (after a reconnect, a timeout or a gap). */
  rewind(why: string): void {
    const now = Date.now();
    if (this.sentUpTo > this.confirmedUpTo && now - this.lastRewindAt >= MIN_REWIND_INTERVAL_MS) {
      this.lastRewindAt = now;
      this.lastProgressAt = now;
      this.stats.inc('outbox_retries_total');
      this.logger.info({ why, from: this.confirmedUpTo + 1, to: this.sentUpTo }, 'outbox: publishing unconfirmed events again');
      this.sentUpTo = this.confirmedUpTo;
    }
    this.pump();
  }

  private tick(): void {
    if (!this.bus.connected) return;
    if (this.sentUpTo > this.confirmedUpTo && Date.now() - this.lastProgressAt > this.retryMs) this.rewind('no confirmation in time');
    this.pump();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
