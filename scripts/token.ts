/**
 * `npm run token -- --sub 123 --role LEVEL_1`: mints an HS256 JWT the gateway accepts, for trying
 * /ws/connect or share-location by hand (docs/compat/user-hub.md's token_factory, for people). Reads the
 * secret, issuer and audience from the same variables as the gateway.
 */
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';

const HELP = `Usage: npm run token -- --sub <user id> [--role R]... [--device D]... [--ttl seconds]

  --sub      the user id (JWT sub), required
  --role     a role (repeat for several); see GATEWAY_ACL
  --device   a device the token grants directly (repeat for several)
  --ttl      lifetime in seconds (default 3600)
Secret, issuer and audience come from GATEWAY_JWT_SECRET, GATEWAY_JWT_ISSUER, GATEWAY_JWT_AUDIENCE.`;

const { values } = parseArgs({
  options: {
    sub: { type: 'string' },
    role: { type: 'string', multiple: true },
    device: { type: 'string', multiple: true },
    ttl: { type: 'string', default: '3600' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const fail = (message: string): never => {
  console.error(`token: ${message}\n\n${HELP}`);
  process.exit(2);
};
const secret = process.env.GATEWAY_JWT_SECRET;
if (!secret || Buffer.byteLength(secret) < 32) fail('GATEWAY_JWT_SECRET must be set (at least 32 bytes), as for the gateway');
if (!values.sub) fail('--sub is required');
const ttl = Number(values.ttl);
if (!Number.isInteger(ttl) || ttl < 1) fail('--ttl must be a positive whole number of seconds');

const jwt = new SignJWT({ roles: values.role ?? [], ...(values.device ? { devices: values.device } : {}) })
  .setProtectedHeader({ alg: 'HS256' })
  .setSubject(values.sub!)
  .setIssuedAt()
  .setExpirationTime(Math.floor(Date.now() / 1000) + ttl);
if (process.env.GATEWAY_JWT_ISSUER) jwt.setIssuer(process.env.GATEWAY_JWT_ISSUER);
if (process.env.GATEWAY_JWT_AUDIENCE) jwt.setAudience(process.env.GATEWAY_JWT_AUDIENCE);
console.log(await jwt.sign(new TextEncoder().encode(secret)));
