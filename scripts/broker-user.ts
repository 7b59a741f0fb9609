/**
 * `npm run broker-user -- --user truck-7 --role device`: prints a GATEWAY_BROKER_USERS entry with an
 * scrypt hash of the password, for the embedded broker. The password is read from stdin (one
 * line), or generated and printed once on stderr when stdin is a terminal and --generate is given.
 */
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { GATEWAY_USERNAME, hashPassword } from '../src/broker/broker-users.js';

const HELP = `Usage: echo -n 'password' | npm run broker-user -- --user <name> --role device|backend
       npm run broker-user -- --user <name> --role device|backend --generate

  --user      the MQTT username (not "${GATEWAY_USERNAME}": that is the gateway's own login)
  --role      device (may publish telemetry only) or backend (also the control topics)
  --generate  make a random password and print it on stderr (once: only the hash is kept)
Prints {"<name>":{"role":"…","password_hash":"scrypt:…"}}: merge it into the GATEWAY_BROKER_USERS JSON.`;

const { values } = parseArgs({
  options: { user: { type: 'string' }, role: { type: 'string' }, generate: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const fail = (message: string): never => {
  process.stderr.write(`broker-user: ${message}\n\n${HELP}\n`);
  process.exit(2);
};
if (!values.user) fail('--user is required');
if (values.user === GATEWAY_USERNAME) fail(`"${GATEWAY_USERNAME}" is reserved for the gateway's own login`);
if (values.role !== 'device' && values.role !== 'backend') fail('--role must be device or backend');

async function readPassword(): Promise<string> {
  if (values.generate) {
    const password = randomBytes(24).toString('base64url');
    process.stderr.write(`password for ${values.user}: ${password}\n`);
    return password;
  }
  if (process.stdin.isTTY) fail('give the password on stdin, or --generate');
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) return line;
  return fail('no password on stdin');
}

const password = await readPassword();
if (password.length < 8) fail('the password must have at least 8 characters');
process.stdout.write(`${JSON.stringify({ [values.user!]: { role: values.role, password_hash: await hashPassword(password) } })}\n`);
