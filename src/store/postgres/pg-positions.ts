/**
 * Each device's last position on PostgreSQL (store.ts PositionRepository; design §4.2): a batch is
 * one statement whatever its size. The batch is read as `json`, not `jsonb`, so each payload keeps
 * its text (field order included) as the SQLite driver keeps it.
 */
import type { PositionRecord } from '../../features/telemetry/store/position-store.js';
import type { PositionRepository } from '../store.js';
import type { PgSession } from './pg-session.js';

const PUT = `
INSERT INTO device_positions (device_id, payload, timestamp, at)
SELECT e ->> 0, (e -> 1)::text, e ->> 2, (e ->> 3)::bigint FROM json_array_elements($1::json) AS e
ON CONFLICT (device_id) DO UPDATE SET payload = excluded.payload, timestamp = excluded.timestamp, at = excluded.at
WHERE device_positions.at < excluded.at`;

export class PgPositions implements PositionRepository {
  constructor(private readonly db: PgSession) {}

  async putJson(json: string): Promise<void> {
    await this.db.query(PUT, [json]);
  }

  async recent(notBefore: number): Promise<PositionRecord[]> {
    const result = await this.db.query<{ device_id: string; payload: string; timestamp: string; at: string }>(
      'SELECT device_id, payload, timestamp, at FROM device_positions WHERE at >= $1 ORDER BY at',
      [notBefore],
    );
    return result.rows.map((r) => ({ deviceId: r.device_id, payload: r.payload, timestamp: r.timestamp, at: Number(r.at) }));
  }

  async purge(notBefore: number): Promise<number> {
    const result = await this.db.query('DELETE FROM device_positions WHERE at < $1', [notBefore]);
    return result.rowCount ?? 0;
  }
}
