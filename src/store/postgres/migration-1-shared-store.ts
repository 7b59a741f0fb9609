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
 *   - The channel log belongs to the store: `channel_heads` holds each channel's last offset, taken
 *     in the write's transaction with the log row; `gateway_meta` holds the store's one epoch.
 *   - `outbox` is a lease: the writer holds its row for a few seconds (`claimed_by`,
 *     `claimed_until`, the database's clock) and any node claims a row whose lease lapsed
 *     (FOR UPDATE SKIP LOCKED), so a dead node's rows are published by another.
 *   - JSON (entity data, payloads, events) is `text`, not `jsonb`: clients get back the exact
 *     bytes they stored (jsonb reorders keys and drops duplicates), as with SQLite.
 *   - Times the API returns as ISO strings stay `text`; times kept as epoch milliseconds are
 *     `bigint` (a JavaScript number holds them exactly).
 *   - `offset` is a reserved word in PostgreSQL: the log's column is `event_offset`.
 *   - New shared knowledge (issue 16 "shared knowledge survives restarts and late joins"):
 *     `revocations` (share links by jti, kept until they would have expired; `revoked_at`, the
 *     database's clock, is the cursor of every node's catch-up) and `device_positions` (the last
 *     known position of each device, for a late node's `*` snapshot).
 *   - `azure_user_groups`: Azure Web PubSub's addUserToGroup relations, kept until removed, which a
 *     user's later connections on any node join (a starting node loads them).
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

CREATE TABLE gateway_meta (
  key text PRIMARY KEY,
  value text NOT NULL
);
-- The store's epoch: names its channel log; a new database is a new epoch.
INSERT INTO gateway_meta (key, value) VALUES ('epoch', substr(md5(random()::text || clock_timestamp()::text), 1, 12));

CREATE TABLE channel_heads (
  channel text PRIMARY KEY,
  last_offset bigint NOT NULL
);

CREATE TABLE channel_log (
  channel text NOT NULL,
  event_offset bigint NOT NULL,
  at bigint NOT NULL,
  event text NOT NULL,
  PRIMARY KEY (channel, event_offset)
);
CREATE INDEX channel_log_at ON channel_log (at);

CREATE TABLE outbox (
  channel text NOT NULL,
  event_offset bigint NOT NULL,
  writer text NOT NULL,
  claimed_by text NOT NULL,
  claimed_until timestamptz NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  PRIMARY KEY (channel, event_offset)
);
CREATE INDEX outbox_claimed_until ON outbox (claimed_until);

-- Digests of channel events a backend published on the bus without a position: every node
-- receives them and the first to insert the digest logs the event (kept a minute).
CREATE TABLE intake (
  digest text PRIMARY KEY,
  at bigint NOT NULL
);
CREATE INDEX intake_at ON intake (at);

CREATE TABLE dead_letters (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  channel text NOT NULL,
  event_offset bigint NOT NULL,
  writer text NOT NULL,
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

CREATE TABLE nodes (
  id text PRIMARY KEY,
  version text NOT NULL,
  started_at bigint NOT NULL,
  heartbeat_at bigint NOT NULL,
  figures text NOT NULL
);

CREATE TABLE user_presence (
  node text NOT NULL,
  user_id text NOT NULL,
  connections integer NOT NULL,
  PRIMARY KEY (node, user_id)
);

CREATE TABLE azure_user_groups (
  hub text NOT NULL,
  user_id text NOT NULL,
  group_name text NOT NULL,
  added_at bigint NOT NULL,
  PRIMARY KEY (hub, user_id, group_name)
);
`;
