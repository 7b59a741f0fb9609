/**
 * The embedded broker's logins (GATEWAY_BROKER_USERS): username → role and password, the password
 * as an scrypt hash `scrypt:N:r:p:<salt>:<hash>` (base64url; `npm run broker-user` makes one) or,
 * for tests and throwaway setups, a plain `secret`. Checks are timing-safe either way.
 */
import { createHash, createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

type UserRole = 'device' | 'backend';

export interface BrokerUser {
  readonly username: string;
  readonly role: UserRole;
  /** `scrypt:N:r:p:salt:hash`, or undefined when `secret` is given. */
  readonly hash?: string;
  readonly secret?: string;
}

/** The username of the gateway's own connection to its embedded broker; not allowed in GATEWAY_BROKER_USERS. */
export const GATEWAY_USERNAME = 'gateway';

const SCRYPT = /^scrypt:(\d+):(\d+):(\d+):([A-Za-z0-9_-]{16,}):([A-Za-z0-9_-]{32,})$/;
const DEFAULT_N = 16384;

/** Parses the JSON of GATEWAY_BROKER_USERS; throws an Error with what is wrong. */
export function parseBrokerUsers(json: string): BrokerUser[] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new Error(`is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new Error('must be an object of username → {"role": "device"|"backend", "password_hash" or "secret"}');
  const users: BrokerUser[] = [];
  for (const [username, entry] of Object.entries(value as Record<string, unknown>)) {
    if (username === '' || username.length > 256) throw new Error(`has a username that is empty or over 256 characters`);
    if (username === GATEWAY_USERNAME)
      throw new Error(`may not name the user "${GATEWAY_USERNAME}": it is the gateway's own login (a random password per start)`);
    if (entry === null || typeof entry !== 'object') throw new Error(`user "${username}" must be an object`);
    const e = entry as Record<string, unknown>;
    if (e.role !== 'device' && e.role !== 'backend') throw new Error(`user "${username}" needs "role": "device" or "backend"`);
    const hash = e.password_hash;
    const secret = e.secret;
    if ((hash === undefined) === (secret === undefined))
      throw new Error(`user "${username}" needs exactly one of "password_hash" (npm run broker-user) and "secret"`);
    if (hash !== undefined) {
      const m = typeof hash === 'string' ? SCRYPT.exec(hash) : null;
      if (!m) throw new Error(`user "${username}" has a password_hash that is not scrypt:N:r:p:salt:hash (npm run broker-user makes one)`);
      const n = Number(m[1]);
      if (n < 1024 || n > 1_048_576 || (n & (n - 1)) !== 0 || Number(m[2]) < 1 || Number(m[2]) > 32 || Number(m[3]) < 1 || Number(m[3]) > 16) {
        throw new Error(`user "${username}" has scrypt parameters out of range (N a power of 2 in 1024..1048576, r 1..32, p 1..16)`);
      }
      users.push({ username, role: e.role, hash: m[0] });
    } else {
      if (typeof secret !== 'string' || secret.length < 8) throw new Error(`user "${username}" has a secret shorter than 8 characters`);
      users.push({ username, role: e.role, secret: secret as string });
    }
  }
  return users;
}

function scryptAsync(password: Buffer, salt: Buffer, keylen: number, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** `scrypt:N:r:p:salt:hash` of `password` (what `npm run broker-user` prints). */
export async function hashPassword(password: string, n = DEFAULT_N): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(Buffer.from(password, 'utf8'), salt, 32, n, 8, 1);
  return `scrypt:${n}:8:1:${salt.toString('base64url')}:${key.toString('base64url')}`;
}

const digest = (b: Buffer | string) => createHash('sha256').update(b).digest();

/** Constant-time equality of two secrets of any length (compared as SHA-256 digests). */
export function secretsEqual(a: Buffer | string, b: Buffer | string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

async function verify(user: BrokerUser, password: Buffer): Promise<boolean> {
  if (user.secret !== undefined) return secretsEqual(password, user.secret);
  const m = SCRYPT.exec(user.hash!)!;
  const expected = Buffer.from(m[5], 'base64url');
  const key = await scryptAsync(password, Buffer.from(m[4], 'base64url'), expected.length, Number(m[1]), Number(m[2]), Number(m[3]));
  return timingSafeEqual(key, expected);
}

/**
 * Checks logins. A password that passed scrypt once is remembered as an HMAC under a key of this
 * process, so a reconnect storm of thousands of devices does not queue thousands of scrypt runs.
 */
export class BrokerLogins {
  private readonly byName: Map<string, BrokerUser>;
  private readonly cacheKey = randomBytes(32);
  private readonly verified = new Map<string, Buffer>();

  constructor(users: readonly BrokerUser[]) {
    this.byName = new Map(users.map((u) => [u.username, u]));
  }

  get size(): number {
    return this.byName.size;
  }

  count(role: UserRole): number {
    let n = 0;
    for (const u of this.byName.values()) if (u.role === role) n++;
    return n;
  }

  /** The user's role when the password is right, else undefined. */
  async check(username: string, password: Buffer | undefined): Promise<UserRole | undefined> {
    const user = this.byName.get(username);
    if (!user || password === undefined) return undefined;
    const mac = createHmac('sha256', this.cacheKey).update(password).digest();
    const known = this.verified.get(username);
    if (known && timingSafeEqual(known, mac)) return user.role;
    if (!(await verify(user, password))) return undefined;
    this.verified.set(username, mac);
    return user.role;
  }
}
