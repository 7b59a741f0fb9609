/**
 * One table maps roles to what they may subscribe to: devices, channels and groups. A pattern is
 * an exact name, `*`, or a prefix ending in `*` (`SIM-*`). A principal may also be granted names
 * directly by its token (`devices`, `channels`, `groups` claims).
 */
import type { Principal } from './principal.js';

/** `publish`: channels a role may write to (REST writes on their collections, the publish API). */
export type AclKind = 'devices' | 'channels' | 'groups' | 'publish';
const KINDS: readonly AclKind[] = ['devices', 'channels', 'groups', 'publish'];

export interface AclConfig {
  readonly roles: Readonly<Record<string, Partial<Record<AclKind, readonly string[]>>>>;
}

function matches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return name.startsWith(pattern.slice(0, -1));
  return pattern === name;
}

export class Acl {
  /** The validated table (plain data, so it can cross to the edge threads). */
  constructor(readonly config: AclConfig) {
    for (const [role, grants] of Object.entries(config.roles)) {
      for (const [kind, patterns] of Object.entries(grants)) {
        if (!KINDS.includes(kind as AclKind)) throw new Error(`ACL role ${role}: unknown kind "${kind}" (${KINDS.join(', ')})`);
        if (!Array.isArray(patterns) || patterns.some((p) => typeof p !== 'string' || p === ''))
          throw new Error(`ACL role ${role}: ${kind} must be a list of names or patterns`);
      }
    }
  }

  /** Parses the ACL from JSON, with errors that say what is wrong. */
  static parse(json: string): Acl {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw new Error(`ACL is not valid JSON: ${(err as Error).message}`);
    }
    if (value === null || typeof value !== 'object' || typeof (value as AclConfig).roles !== 'object' || (value as AclConfig).roles === null) {
      throw new Error('ACL must be an object with a "roles" object, e.g. {"roles":{"admin":{"devices":["*"]}}}');
    }
    return new Acl(value as AclConfig);
  }

  allows(principal: Principal, kind: AclKind, name: string): boolean {
    if (kind !== 'publish' && principal[kind].some((p) => matches(p, name))) return true;
    // Own properties only: a role named by a token is not looked up on Object.prototype (`constructor`, `__proto__`).
    const roles = this.config.roles;
    return principal.roles.some((role) => Object.hasOwn(roles, role) && (roles[role][kind] ?? []).some((p) => matches(p, name)));
  }
}
