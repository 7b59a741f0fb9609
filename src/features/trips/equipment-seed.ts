/**
 * GATEWAY_EQUIPMENT_FILE: the equipment to register at start, a JSON list of
 * `{"code":"EXC-001","kind":"excavator","active":true,"description":"…"}`. Codes already in the
 * registry are updated; others are left as they are. A bad file stops the start, naming the entry.
 */
import { readFileSync } from 'node:fs';
import { GatewayError } from '../../errors/gateway-error.js';
import { DEFAULT_MAX_JSON_DEPTH } from '../../protocol/bounded-json.js';
import type { Db } from '../../store/database.js';
import { parseEquipment, TripStore } from './store/trip-store.js';

export function seedEquipment(db: Db, path: string): number {
  const fail = (why: string): never => {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `GATEWAY_EQUIPMENT_FILE ${JSON.stringify(path)}: ${why}`);
  };
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    fail((err as Error).message);
  }
  if (!Array.isArray(value)) fail('must hold a JSON list of {"code","kind","active"}');
  const list = (value as unknown[]).map((entry, i) => {
    try {
      return parseEquipment(entry);
    } catch (err) {
      return fail(`entry ${i}: ${(err as Error).message}`);
    }
  });
  return new TripStore(db, DEFAULT_MAX_JSON_DEPTH).saveEquipment(list).length; // equipment writes no event
}
