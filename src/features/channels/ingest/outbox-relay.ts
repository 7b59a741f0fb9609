/**
 * The outbox relay: publishes the store's outbox rows to the bus (QoS 1), each with its position in
 * the channel's log in front of its fields (outbox-event.ts), and deletes a row once the broker has
 * acknowledged it (PUBACK). Rows are leased (store/store.ts Outbox.claim): this node's relay takes
 * the rows this node wrote as soon as an edge says there are some (nudge), and, every tick, any row
 * whose lease lapsed, whoever wrote it: a node that died, or a publish the broker never
 * acknowledged. So nothing waits on a dead node, and a broker outage delays events and loses none.
 *
 * Delivery to subscribers does not depend on the bus alone: every node's channel pipeline fills a
 * gap from the store's log and polls the heads (channel-pipeline.ts). The bus is the fast path; a
 * copy (a retry, a takeover) is dropped by offset.
 *
 * A row is never retried forever: one claimed for the OUTBOX_MAX_ATTEMPTS-th time without an
 * acknowledgement is moved to the dead letters instead (store/dead-letters.ts); its event stays in
 * the log, delivered from there. Rows are claimed only while the bus is up, so an outage does not
 * count against them.
 */
import type { Logger } from 'pino';
import { errorText } from '../../../log/error-text.js';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import type { IngestMetric } from '../../../metrics/metric-table.js';
import type { DeadLetterRepository, Outbox, OutboxRow, Position } from '../../../store/store.js';
import { positionPrefix } from '../outbox-event.js';
import { OUTBOX_MAX_ATTEMPTS } from '../store/dead-letters.js';

/** Rows claimed at most per claim. */
const BATCH = 500;
/** Lapsed leases are looked for, acknowledgements deleted and the pending count sampled this often. */
const TICK_MS = 250;
const COUNT_EVERY_TICKS = 4;

export interface RelayBus {
  readonly connected: boolean;
  /** `done` is called with no error once the broker acknowledged the message. */
  publish(topic: string, payload: string, done: (err?: Error) => void): void;
}

export interface RelayOptions {
  readonly nodeId: string;
  readonly epoch: string;
  readonly topicPrefix: string;
  /** GATEWAY_OUTBOX_LEASE_MS: how long a claimed row is this node's before any node may claim it again. */
  readonly leaseMs: number;
}

export class OutboxRelay {
  private readonly timer: NodeJS.Timeout;
  private readonly log: RateLimitedLog;
  private claiming = false;
  private again = false;
  private pumpScheduled = false;
  private acked: Position[] = [];
  /** Acknowledged rows not deleted yet (`channel offset`): a lapsed lease must not publish them again. */
  private readonly ackedKeys = new Set<string>();
  private deleting = false;
  private ticks = 0;
  private stopped = false;

  constructor(
    private readonly outbox: Outbox,
    private readonly deadLetters: DeadLetterRepository,
    private readonly options: RelayOptions,
    private readonly bus: RelayBus,
    private readonly stats: RowWriter<IngestMetric>,
    logger: Logger,
    /** A row the broker acknowledged (the outbound Azure service takes this node's hub-bound events from here). */
    private readonly onPublished: ((row: OutboxRow) => void) | null = null,
  ) {
    this.log = new RateLimitedLog(logger);
    this.timer = setInterval(() => this.tick(), TICK_MS);
    void this.sampleCounts();
  }

  /** Rows were written (a nudge from an edge after a write): claim them at the end of this turn, once for all nudges. */
  nudge(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      void this.pump();
    });
  }

  /** Claims and publishes until there is nothing more to claim; one claim at a time. */
  async pump(): Promise<void> {
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = true;
    try {
      do {
        this.again = false;
        if (!this.bus.connected || this.stopped) return;
        const rows = await this.outbox.claim(this.options.nodeId, this.options.leaseMs, BATCH);
        for (const row of rows) await this.publish(row);
        if (rows.length === BATCH) this.again = true;
      } while (this.again);
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'outbox: cannot claim rows from the store; trying again');
    } finally {
      this.claiming = false;
    }
  }

  private async publish(row: OutboxRow): Promise<void> {
    const key = `${row.channel} ${row.offset}`;
    if (this.ackedKeys.has(key)) return;
    if (row.attempts > OUTBOX_MAX_ATTEMPTS) {
      const reason = `claimed ${OUTBOX_MAX_ATTEMPTS} times without the broker's acknowledgement`;
      if (await this.deadLetters.move(row, reason)) {
        this.stats.inc('outbox_dead_lettered_total');
        this.log.warn({ channel: row.channel, offset: row.offset, reason }, 'outbox: row moved to the dead letters (GET /api/v1/outbox/dead-letters)');
      }
      return;
    }
    if (row.attempts > 1) this.stats.inc('outbox_retries_total');
    if (row.takenOver === true) this.stats.inc('outbox_taken_over_total');
    // The position goes in front of the logged event's fields: no parse/stringify round trip.
    // (String(): a row written by hand may hold anything; receivers repair it from the log or skip it.)
    const payload = positionPrefix(row.offset, this.options.epoch, row.at) + String(row.event).slice(1);
    this.bus.publish(`${this.options.topicPrefix}/${row.channel}`, payload, (err) => {
      if (err !== undefined) return; // the lease lapses and the row is claimed again
      this.acked.push({ channel: row.channel, offset: row.offset });
      this.ackedKeys.add(key);
      this.onPublished?.(row);
    });
    this.stats.inc('outbox_published_total');
  }

  private tick(): void {
    if (this.stopped) return;
    void this.pump();
    void this.deleteAcknowledged();
    if (++this.ticks % COUNT_EVERY_TICKS === 0) void this.sampleCounts();
  }

  private async deleteAcknowledged(): Promise<void> {
    if (this.deleting || this.acked.length === 0) return;
    this.deleting = true;
    const keys = this.acked;
    this.acked = [];
    try {
      await this.outbox.published(keys);
      for (const k of keys) this.ackedKeys.delete(`${k.channel} ${k.offset}`);
    } catch (err) {
      this.acked.push(...keys); // deleted next tick; until then a lapsed lease only makes a copy
      this.log.warn({ err: errorText(err) }, 'outbox: cannot delete acknowledged rows; trying again');
    } finally {
      this.deleting = false;
    }
  }

  private async sampleCounts(): Promise<void> {
    try {
      this.stats.set('outbox_pending', await this.outbox.count());
      this.stats.set('outbox_dead_letters', await this.deadLetters.count());
    } catch {
      // the store is away: the gauges keep their last value
    }
  }

  /** Stops claiming; what was acknowledged is deleted before the store closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.deleteAcknowledged();
  }
}
