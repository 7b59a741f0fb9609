/**
 * The bus's control traffic, next to telemetry: share-link revocations and user/role events.
 * Every node subscribes, so a revocation or event published by any node (or any backend) reaches
 * every edge of every node. Bad payloads are counted and dropped like bad telemetry; every payload
 * is bounded (UTF-8, nesting depth: protocol/bounded-json.ts) before it is parsed, so the JSON and
 * msgpack encodings below cannot overflow the stack.
 *
 *   <GATEWAY_REVOCATIONS_TOPIC>          {"jti":"…","expires_at":"ISO"}
 *   <GATEWAY_EVENTS_TOPIC>/all           {"type":"notification","data":{…}}   every /ws/connect user
 *   <GATEWAY_EVENTS_TOPIC>/user/<id>     an event for one user
 *   <GATEWAY_EVENTS_TOPIC>/role/<role>   an event for one role
 */
import type { Logger } from 'pino';
import { Packr } from 'msgpackr';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import { BoundedJsonError, parseJsonBytes } from '../protocol/bounded-json.js';
import type { IngestToEdge } from '../threads/messages.js';

const TARGET = /^(all|user\/[A-Za-z0-9_.:@-]{1,128}|role\/[A-Za-z0-9_.:@-]{1,128})$/;
const packr = new Packr({ useRecords: false });

export class ControlMessages {
  private readonly log: RateLimitedLog;

  constructor(
    private readonly broadcast: (message: IngestToEdge) => void,
    private readonly onRejected: () => void,
    private readonly maxJsonDepth: number,
    logger: Logger,
  ) {
    this.log = new RateLimitedLog(logger);
  }

  /** A revocation's link and expiry, or null (refused, counted here); share-location keeps and broadcasts it. */
  revocation(payload: Buffer): { readonly jti: string; readonly expiresAt: number } | null {
    const value = this.parse('revocation', payload);
    if (value === null) return null;
    const expiresAt = typeof value?.expires_at === 'string' ? Date.parse(value.expires_at) : Number.NaN;
    if (typeof value?.jti !== 'string' || value.jti.length > 128 || !Number.isFinite(expiresAt)) {
      this.reject('revocation', 'needs "jti" and "expires_at"');
      return null;
    }
    return { jti: value.jti, expiresAt };
  }

  event(target: string, payload: Buffer): void {
    if (!TARGET.test(target)) {
      this.reject('event', `target must be all, user/<id> or role/<role> (got ${JSON.stringify(target.slice(0, 60))})`);
      return;
    }
    const value = this.parse('event', payload);
    if (value === null) return;
    if (value === undefined || typeof value.type !== 'string' || value.type === '') {
      this.reject('event', 'must be a JSON object with a "type"');
      return;
    }
    const event = value.timestamp === undefined ? { ...value, timestamp: new Date().toISOString() } : value;
    this.broadcast({ t: 'event', target, json: JSON.stringify(event), msgpack: Uint8Array.from(packr.pack(event)) });
  }

  /** The payload's object; undefined: not an object or not JSON; null: refused for its encoding or depth (counted here). */
  private parse(kind: string, payload: Buffer): Record<string, unknown> | undefined | null {
    let value: unknown;
    try {
      value = parseJsonBytes(payload, { maxDepth: this.maxJsonDepth });
    } catch (err) {
      if (err instanceof BoundedJsonError && err.reason !== 'syntax') {
        this.reject(kind, `payload ${err.detail}`);
        return null;
      }
      return undefined;
    }
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  }

  private reject(kind: string, why: string): void {
    this.onRejected();
    this.log.warn({ kind, why }, 'control message rejected');
  }
}
