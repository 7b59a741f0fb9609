/**
 * Migration 1 of the PostgreSQL store: the shared schema of a cluster.
 *
 * ISSUE 16 DRAFT. This mirrors today's SQLite tables (src/store/database.ts) so that the store
 * interface and its contract suite can be written against it; it is not used by the gateway yet
 * and may still change freely until the PostgreSQL backend ships (no database holds it then).
 * Once it ships, never edit it: add migration 2.
 *
 * Choices that differ from SQLite, and why:
 *   - Ids come from the store, so they are unique across nodes (issue 16 "ids unique across the
 *     cluster"): `sequences` for entities (one counter row per collection, taken with
 *     INSERT … ON CONFLICT DO UPDATE … RETURNING in the write's transaction, which locks the row
 *     until the commit) and for trips (the row `#trips`, a name no collection can have), so that, as
 *     on SQLite, a refused or rolled-back write takes no id; identity columns elsewhere.
 *   - `entities` and `trips` carry a `version`, raised by every write: an update reads the row
 *     without a lock and writes it only if the version is still the one it read (compare-and-set),
 *     so two nodes updating one row at once never lose a change (src/store/postgres/).
 *   - The channel log's offsets and epoch belong to the store too: `channel_heads` holds each
 *     channel's epoch beside its last offset, both assigned in the write's transaction.
 *   - `outbox` names the node that wrote each row, so another node can take over a dead node's
 *     rows (FOR UPDATE SKIP LOCKED); `origins` keeps the duplicate filter of today's history file.
 *   - JSON (entity data, payloads, events) is `text`, not `jsonb`: clients get back the exact
 *     bytes they stored (jsonb reorders keys and drops duplicates), as with SQLite.
 *   - Times the API returns as ISO strings stay `text`; times kept as epoch milliseconds are
 *     `bigint` (a JavaScript number holds them exactly).
 *   - `offset` is a reserved word in PostgreSQL: the log's column is `event_offset`.
 *   - New shared knowledge (issue 16 "shared knowledge survives restarts and late joins"):
 *     `revocations` (share links by jti, kept until they would have expired; `revoked_at`, the
 *     database's clock, is the cursor of every node's catch-up) and `device_positions` (the last
 *     known position of each device, for a late node's `*` snapshot).
 */
export const SHARED_STORE_V1 = `
CREATE TABLE sequences (
  collection text PRIMARY KEY,
  last_id bigint NOT NULL
);

CREATE TABLE entities (
  collection text NOT NULL,
  id bigint NOT NULL,
  data text NOT NULL,
  version bigint NOT NULL,
  created_at text NOT NULL,
  updated_at text NOT NULL,
  PRIMARY KEY (collection, id)
);

CREATE TABLE outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  node text NOT NULL,
  channel text NOT NULL,
  payload text NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX outbox_node ON outbox (node, id);

CREATE TABLE dead_letters (
  id bigint PRIMARY KEY,
  node text NOT NULL,
  channel text NOT NULL,
  payload text NOT NULL,
  created_at bigint NOT NULL,
  reason text NOT NULL,
  dead_at bigint NOT NULL
);

CREATE TABLE equipment (
  code text PRIMARY KEY,
  kind text NOT NULL,
  active boolean NOT NULL,
  description text,
  updated_at text NOT NULL
);

CREATE TABLE trips (
  id bigint PRIMARY KEY,
  state text NOT NULL,
  data text NOT NULL,
  version bigint NOT NULL,
  created_at text NOT NULL,
  updated_at text NOT NULL
);

CREATE TABLE trip_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  trip_id bigint NOT NULL,
  event text NOT NULL,
  at bigint NOT NULL
);
CREATE INDEX trip_events_at ON trip_events (at);

CREATE TABLE channel_heads (
  channel text PRIMARY KEY,
  epoch text NOT NULL,
  last_offset bigint NOT NULL
);

CREATE TABLE history (
  channel text NOT NULL,
  event_offset bigint NOT NULL,
  at bigint NOT NULL,
  event text NOT NULL,
  PRIMARY KEY (channel, event_offset)
);
CREATE INDEX history_at ON history (at);

CREATE TABLE origins (
  node text PRIMARY KEY,
  last_seq bigint NOT NULL
);

CREATE TABLE revocations (
  jti text PRIMARY KEY,
  expires_at bigint NOT NULL,
  revoked_at bigint NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);
CREATE INDEX revocations_revoked_at ON revocations (revoked_at);

CREATE TABLE device_positions (
  device_id text PRIMARY KEY,
  payload text NOT NULL,
  timestamp text NOT NULL,
  at bigint NOT NULL
);
CREATE INDEX device_positions_at ON device_positions (at);
`;
