/** Environment for a gateway with every kind of JWT key the tests use, written to a temp dir. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { BACKEND_BUS_ENV } from './publisher.js';
import { AUDIENCE, ISSUER, SECRET, type KeyPairs } from './tokens.js';

export const ACL = { roles: { admin: { devices: ['*'] }, LEVEL_1: { devices: ['SIM-*'] } } };

export function authEnv(keys: KeyPairs, extra: Record<string, string> = {}): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-keys-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const rs = join(dir, 'rs256.pem');
  writeFileSync(rs, keys.pem.RS256);
  return {
    GATEWAY_JWT_SECRET: SECRET,
    GATEWAY_JWT_PUBLIC_KEYS: `RS256:kid-RS256:${rs}`,
    GATEWAY_JWT_ISSUER: ISSUER,
    GATEWAY_JWT_AUDIENCE: AUDIENCE,
    GATEWAY_JWT_CLOCK_TOLERANCE_S: '0',
    GATEWAY_ACL: JSON.stringify(ACL),
    ...BACKEND_BUS_ENV,
    ...extra,
  };
}
