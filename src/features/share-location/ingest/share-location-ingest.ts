/**
 * Share-location on the ingest thread: share-link revocations from the bus (GATEWAY_REVOCATIONS_TOPIC),
 * kept in the store (store/revocation-store.ts) and sent to every edge. At start, before ingest
 * reports ready, the unexpired ones kept go to every edge in one `revocations-init`
 * (docs/design/cluster-store.md §4.1), so a restart forgets none.
 */
import type { IngestFeature } from '../../../ingest/ingest-feature.js';
import { RevocationStore } from '../store/revocation-store.js';

/** Expired rows are purged this often (a row is only useless after its link's expiry, never wrong). */
const PURGE_MS = 60_000;

export const shareLocation: IngestFeature = {
  name: 'share-location',
  register({ config, controlMessages, storeDb, fanout, logger }) {
    const log = logger.child({ component: 'revocations' });
    const store = new RevocationStore(storeDb);
    const now = Date.now();
    store.purgeExpired(now);
    const revocations = store.active(now);
    fanout.broadcast({ t: 'revocations-init', revocations });
    if (revocations.length > 0) log.info({ revocations: revocations.length }, 'share-link revocations loaded');
    const purge = setInterval(() => {
      try {
        store.purgeExpired(Date.now());
      } catch (err) {
        log.error({ err }, 'could not purge expired revocations');
      }
    }, PURGE_MS);
    purge.unref();

    const revoked = (body: Buffer) => {
      const revocation = controlMessages.revocation(body);
      if (revocation === null) return;
      try {
        store.revoke(revocation.jti, revocation.expiresAt, Date.now());
      } catch (err) {
        // The edges still apply it; only a restart before its expiry would forget it.
        log.error({ err, jti: revocation.jti }, 'could not keep a revocation in the store');
      }
      fanout.broadcast({ t: 'revoked', jti: revocation.jti, expiresAt: revocation.expiresAt });
    };
    return {
      control: [{ topic: config.share.revocationsTopic, subtopics: 'none', handle: (_, body) => revoked(body) }],
      handlers: {},
      stop: () => clearInterval(purge),
    };
  },
};
