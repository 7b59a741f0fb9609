/**
 * GATEWAY_EQUIPMENT_FILE: the equipment to register at start, a JSON list of
 * `{"code":"EXC-001","kind":"excavator","active":true,"description":"…"}`. Codes already in the
 * registry are updated; others are left as they are. A bad file stops the start, naming the entry.
 * Written through the Store (either backend); on PostgreSQL every node of a cluster may run it at
 * once (`equipment.save` is an upsert).
 */
import { readFileSync } from 'node:fs';
import { GatewayError } from '../../errors/gateway-error.js';
import type { Store } from '../../store/store.js';
import { parseEquipment, type EquipmentInput } from './store/trip-store.js';

/** The file's entries, checked; throws GW_ERR_CONFIG_INVALID naming the file and the entry. */
export function readEquipmentFile(path: string): EquipmentInput[] {
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
  return (value as unknown[]).map((entry, i) => {
    try {
      return parseEquipment(entry);
    } catch (err) {
      return fail(`entry ${i}: ${(err as Error).message}`);
    }
  });
}

/** Registers the file's equipment in one upsert; returns how many entries it had. Equipment writes no event. */
export async function seedEquipment(store: Store, path: string): Promise<number> {
  return (await store.equipment.save(readEquipmentFile(path))).length;
}
