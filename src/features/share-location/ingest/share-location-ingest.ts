/**
 * Share-location on the ingest thread: share-link revocations from the bus (GATEWAY_REVOCATIONS_TOPIC),
 * kept in the store (`store.revocations`: gateway.sqlite, or PostgreSQL shared by every node) and
 * sent to every edge (docs/design/cluster-store.md §4.1).
 *
 *   - At start, the unexpired revocations kept are loaded (async; the part's `ready`, which ingest
 *     awaits before it reports ready) and go to every edge in one `revocations-init`, so a restarted
 *     or late node forgets none. A store that fails then fails the start.
 *   - Each revocation the bus brings goes to the edges at once (the fast path) and is written to the
 *     store (idempotent: every node that hears it writes it). One that arrives before the init is
 *     sent goes to the edges after it, as the init comes first.
 *   - Every SYNC_MS, and after each (re)subscription to the bus, the catch-up reads the revocations
 *     written since the newest one it has read, less a margin, and sends the edges those they have
 *     not had: a node whose bus was cut when a revocation happened learns it from the store.
 *
 * The store failing while running is logged (rate-limited); a write that failed is tried again on
 * each tick until it succeeds or its link expires. Nothing here awaits the store on the bus's path.
 */
import type { IngestFeature } from '../../../ingest/ingest-feature.js';
import { RateLimitedLog } from '../../../log/rate-limited-log.js';
import type { StoredRevocation } from '../../../store/store.js';
import { retryAtStart } from '../../../store/retry-at-start.js';

/** Expired rows are purged this often (a row is only useless after its link's expiry, never wrong). */
const PURGE_MS = 60_000;
/** The catch-up's period: the longest a node off the bus takes to learn a revocation. */
export const REVOCATIONS_SYNC_MS = 5_000;
/**
 * The catch-up reads back this far before the newest `revokedAt` it has read: a row whose
 * transaction committed after a newer row was read (its `revokedAt` is taken before the commit) is
 * still found, and on SQLite another writer's clock may be this far behind.
 */
const SYNC_MARGIN_MS = 60_000;

export const shareLocation: IngestFeature = {
  name: 'share-location',
  register({ config, controlMessages, store, fanout, logger }) {
    const log = logger.child({ component: 'revocations' });
    const storeLog = new RateLimitedLog(log);
    /** Every revocation the edges have had (jti → expiry), until it expires. */
    const sent = new Map<string, number>();
    /** Bus revocations heard before the init was sent: sent right after it. */
    let early: { jti: string; expiresAt: number }[] | null = [];
    /** The newest `revokedAt` read from the store (0: none yet). */
    let newest = 0;
    let syncing = false;
    let stopped = false;

    const toEdges = (jti: string, expiresAt: number): void => {
      if (sent.has(jti)) return;
      sent.set(jti, expiresAt);
      fanout.broadcast({ t: 'revoked', jti, expiresAt });
    };
    const seen = (rows: readonly StoredRevocation[]): void => {
      for (const row of rows) if (row.revokedAt > newest) newest = row.revokedAt;
    };

    /** Revocations whose write failed (jti → expiry): written again on each catch-up tick until their expiry. */
    const unwritten = new Map<string, number>();
    const write = (jti: string, expiresAt: number): void => {
      store.revocations.revoke(jti, expiresAt).then(
        () => unwritten.delete(jti),
        (err: unknown) => {
          if (stopped) return;
          unwritten.set(jti, expiresAt);
          storeLog.warn({ err, jti }, 'could not keep a revocation in the store; tried again in a few seconds');
        },
      );
    };
    const retryWrites = (): void => {
      const now = Date.now();
      for (const [jti, expiresAt] of unwritten) {
        unwritten.delete(jti);
        if (expiresAt > now) write(jti, expiresAt);
      }
    };

    const ready = retryAtStart('share-link revocations', () => store.revocations.active(0), config.store.startWaitMs, logger).then((revocations) => {
      seen(revocations);
      for (const r of revocations) sent.set(r.jti, r.expiresAt);
      fanout.broadcast({ t: 'revocations-init', revocations: revocations.map((r) => ({ jti: r.jti, expiresAt: r.expiresAt })) });
      if (revocations.length > 0) log.info({ revocations: revocations.length }, 'share-link revocations loaded');
      const heard = early ?? [];
      early = null;
      for (const r of heard) toEdges(r.jti, r.expiresAt);
    });

    const catchUp = (): void => {
      if (syncing || stopped || early !== null) return;
      syncing = true;
      store.revocations.active(newest === 0 ? 0 : newest - SYNC_MARGIN_MS).then(
        (rows) => {
          syncing = false;
          if (stopped) return;
          seen(rows);
          const now = Date.now();
          let learned = 0;
          for (const r of rows) {
            if (r.expiresAt <= now || sent.has(r.jti)) continue;
            toEdges(r.jti, r.expiresAt);
            learned++;
          }
          if (learned > 0) log.info({ revocations: learned }, 'share-link revocations learned from the store (not heard on the bus)');
        },
        (err: unknown) => {
          syncing = false;
          if (!stopped) storeLog.warn({ err }, 'could not read the revocations from the store; retried in a few seconds');
        },
      );
    };
    const sync = setInterval(() => {
      retryWrites();
      catchUp();
    }, REVOCATIONS_SYNC_MS);
    sync.unref();

    const purge = setInterval(() => {
      const now = Date.now();
      for (const [jti, expiresAt] of sent) if (expiresAt <= now) sent.delete(jti);
      store.revocations.purgeExpired(now).catch((err: unknown) => {
        if (!stopped) storeLog.warn({ err }, 'could not purge expired revocations');
      });
    }, PURGE_MS);
    purge.unref();

    const revoked = (body: Buffer) => {
      const revocation = controlMessages.revocation(body);
      if (revocation === null) return;
      const { jti, expiresAt } = revocation;
      // The edges apply it at once; the row is for the nodes that start later or miss the bus.
      write(jti, expiresAt);
      if (early !== null) early.push({ jti, expiresAt });
      else toEdges(jti, expiresAt);
    };
    return {
      control: [{ topic: config.share.revocationsTopic, subtopics: 'none', handle: (_, body) => revoked(body) }],
      handlers: {},
      subscribed: catchUp,
      ready,
      stop: () => {
        stopped = true;
        clearInterval(sync);
        clearInterval(purge);
      },
    };
  },
};
