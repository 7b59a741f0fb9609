/**
 * `npm run bench:tokens`: what one token check costs the calling thread, per kind (one of the two
 * measurements behind GATEWAY_TOKEN_CHECKS; the other is the suite's connection storm). "blocked"
 * is the time the event loop was busy per check; "wall" includes waiting for WebCrypto's threads.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { decrypt, encrypt, generateKeys } from 'paseto-ts/v4';
import { JwtVerifier } from '../src/auth/jwt-verifier.js';

const N = 2000;
const SECRET = 'bench-secret-with-at-least-32-bytes-long';

async function measure(name: string, check: () => unknown): Promise<void> {
  for (let i = 0; i < 200; i++) await check();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await check();
  const wall = (performance.now() - t0) / N;
  const elu = performance.eventLoopUtilization(elu0);
  console.log(`${name.padEnd(28)} wall ${(wall * 1000).toFixed(1).padStart(7)} µs   blocked ${((elu.active / N) * 1000).toFixed(1).padStart(7)} µs`);
}

const es = await generateKeyPair('ES256', { extractable: true });
const rs = await generateKeyPair('RS256', { extractable: true });
const base = { clockToleranceS: 5, rolesClaim: 'roles', maxTokenBytes: 8192 };
const verifier = await JwtVerifier.create({
  ...base,
  secret: SECRET,
  publicKeys: [
    { alg: 'ES256', pem: await exportSPKI(es.publicKey) },
    { alg: 'RS256', pem: await exportSPKI(rs.publicKey) },
  ],
});
const mint = (alg: string, key: Parameters<SignJWT['sign']>[0]) =>
  new SignJWT({ roles: ['bench'] }).setProtectedHeader({ alg }).setSubject('u').setExpirationTime('1h').sign(key);
const hs = await mint('HS256', new TextEncoder().encode(SECRET));
const esToken = await mint('ES256', es.privateKey);
const rsToken = await mint('RS256', rs.privateKey);
const localKey = generateKeys('local');
const link = encrypt(localKey, { device_id: 'D1', jti: 'j', exp: new Date(Date.now() + 3600e3).toISOString() }, { addExp: false });

const delay = monitorEventLoopDelay();
delay.enable();
console.log(`token checks, ${N} each, on this thread (node ${process.version})`);
await measure('JWT HS256 (jose)', () => verifier.verify(hs));
await measure('JWT ES256 (jose)', () => verifier.verify(esToken));
await measure('JWT RS256 (jose)', () => verifier.verify(rsToken));
await measure('PASETO v4.local (paseto-ts)', () => decrypt(localKey, link, { validatePayload: false }));
delay.disable();
