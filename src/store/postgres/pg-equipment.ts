/**
 * Equipment on PostgreSQL. `save` is one upsert statement (all or none); several nodes seeding
 * GATEWAY_EQUIPMENT_FILE at once take the rows in code order, so they never deadlock. Codes sort
 * bytewise (COLLATE "C"), as SQLite's BINARY collation does, whatever the database's locale.
 */
import type { Equipment, EquipmentKind } from '../../features/trips/store/trip-store.js';
import type { EquipmentInput, EquipmentRepository } from '../store.js';
import type { PgSession } from './pg-session.js';

export interface EquipmentRow {
  code: string;
  kind: string;
  active: boolean;
  description: string | null;
  updated_at: string;
}

const COLUMNS = 'code, kind, active, description, updated_at';

export const equipmentOf = (row: EquipmentRow): Equipment => ({
  code: row.code,
  kind: row.kind as EquipmentKind,
  active: row.active,
  description: row.description,
  updated_at: row.updated_at,
});

export const SELECT_EQUIPMENT = `SELECT ${COLUMNS} FROM equipment WHERE code = `;

export class PgEquipment implements EquipmentRepository {
  constructor(private readonly db: PgSession) {}

  async list(): Promise<Equipment[]> {
    const { rows } = await this.db.query<EquipmentRow>(`SELECT ${COLUMNS} FROM equipment ORDER BY code COLLATE "C"`);
    return rows.map(equipmentOf);
  }

  async get(code: string): Promise<Equipment | null> {
    const { rows } = await this.db.query<EquipmentRow>(`${SELECT_EQUIPMENT}$1`, [code]);
    return rows[0] ? equipmentOf(rows[0]) : null;
  }

  async save(list: readonly EquipmentInput[]): Promise<Equipment[]> {
    const now = new Date().toISOString();
    // One row per code, the last one given winning (as the SQLite driver's upserts in order do).
    const byCode = new Map(list.map((e) => [e.code, e]));
    const rows = [...byCode.values()].sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
    if (rows.length > 0) {
      await this.db.query(
        `INSERT INTO equipment (${COLUMNS})
         SELECT code, kind, active, description, $5 FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[]) AS u (code, kind, active, description)
         ON CONFLICT (code) DO UPDATE SET kind = excluded.kind, active = excluded.active, description = excluded.description, updated_at = excluded.updated_at`,
        [rows.map((e) => e.code), rows.map((e) => e.kind), rows.map((e) => e.active), rows.map((e) => e.description), now],
      );
    }
    return list.map((e) => ({ ...e, updated_at: now }));
  }

  async remove(code: string): Promise<boolean> {
    const { rowCount } = await this.db.query('DELETE FROM equipment WHERE code = $1', [code]);
    return (rowCount ?? 0) > 0;
  }
}
