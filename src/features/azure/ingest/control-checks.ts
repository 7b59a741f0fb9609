/**
 * The checks of the Azure control messages that nodes send each other (presence,
 * azure-cluster-presence.ts; session handovers, azure-remote-handovers.ts): a message that fails
 * one throws Malformed, which the receiver drops and counts.
 */
/** The longest id (node, connection, hub, user, reference) a control message may carry. */
export const MAX_ID = 1024;

export class Malformed extends Error {}

export function fail(why: string): never {
  throw new Malformed(why);
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
export const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID;
export const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
