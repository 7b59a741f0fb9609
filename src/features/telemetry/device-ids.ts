/**
 * Device id rules, shared by the stream's query string, its subscribe frames and the ingest
 * decoder, so an id a device can publish is always an id a client can ask for.
 */
import { GatewayError } from '../../errors/gateway-error.js';

const MAX_DEVICE_ID_LENGTH = 128;
const DEVICE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID.test(id);
}

/**
 * `device_ids=*`: every device, present and future (a dashboard). Never a device's own id (the
 * rules above exclude `*`); with the ACL, only roles whose `devices` include `*` may ask for it.
 */
export const ALL_DEVICES = '*';

/** The reference's own message for a missing device_ids (docs/compat/gps-stream.md, "Envelopes"). */
const MISSING_DEVICE_IDS_MESSAGE = 'Debe especificar al menos un device_id en los query params';

/**
 * Validates a list of requested ids and returns them de-duplicated in request order.
 * Numbers are accepted and turned into strings (devices often send numeric ids). `quote`: the
 * error may show the bad id (a query's answer); a frame's never does, since bad frames are logged.
 */
export function validateDeviceIds(ids: readonly unknown[], max: number, quote = true): string[] {
  const seen = new Set<string>();
  for (let i = 0; i < ids.length; i++) {
    const raw = ids[i];
    const id = typeof raw === 'number' && Number.isSafeInteger(raw) ? String(raw) : raw;
    if (id === ALL_DEVICES) return [ALL_DEVICES]; // every device: the other ids add nothing
    if (typeof id !== 'string' || !isValidDeviceId(id)) {
      const which =
        quote && typeof id === 'string'
          ? JSON.stringify(id.slice(0, 40))
          : `at position ${i + 1} (${typeof id === 'string' ? `${id.length} characters` : `a ${typeof raw}`})`;
      throw new GatewayError('GW_ERR_DEVICE_ID_INVALID', `Invalid device_id ${which}: use 1-${MAX_DEVICE_ID_LENGTH} characters from A-Z a-z 0-9 _ - . :`);
    }
    seen.add(id);
  }
  if (seen.size === 0) throw new GatewayError('GW_ERR_DEVICE_IDS_MISSING', MISSING_DEVICE_IDS_MESSAGE);
  if (seen.size > max) {
    throw new GatewayError('GW_ERR_DEVICE_IDS_TOO_MANY', `Too many device_ids: ${seen.size} (at most ${max} per connection)`);
  }
  return [...seen];
}

/** Parses the query's `device_ids=A,B` (already URL-decoded by uWS). */
export function parseDeviceIdsQuery(value: string | undefined, max: number): string[] {
  if (value === undefined) throw new GatewayError('GW_ERR_DEVICE_IDS_MISSING', MISSING_DEVICE_IDS_MESSAGE);
  // Refuse absurd query strings before splitting them (each id is at most 128 characters).
  if (value.length > max * (MAX_DEVICE_ID_LENGTH + 1)) {
    throw new GatewayError('GW_ERR_DEVICE_IDS_TOO_MANY', `device_ids is too long (${value.length} characters)`);
  }
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return validateDeviceIds(parts, max);
}
