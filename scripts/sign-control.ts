/**
 * `npm run --silent sign -- <topic> [payload]`: writes the payload tagged for `topic` with
 * GATEWAY_CLUSTER_KEY (ingest/control-auth.ts) to stdout, for a backend or an operator publishing a
 * control message by hand, e.g.
 *
 *   npm run --silent sign -- gateway/events/all '{"type":"system_event"}' | mosquitto_pub -t gateway/events/all -s
 *
 * Without a payload argument it reads the payload from stdin (bytes as they are). The tag holds the
 * time: publish it within 5 minutes.
 */
import { parseArgs } from 'node:util';
import { ControlAuth } from '../src/ingest/control-auth.js';

const HELP = `Usage: npm run --silent sign -- <topic> [payload]   (payload from stdin when omitted)

Prints the payload with its GWMAC1 tag for <topic>, keyed with GATEWAY_CLUSTER_KEY (the gateway's).
Pipe it to a publisher, e.g. | mosquitto_pub -t <topic> -s`;

const { values, positionals } = parseArgs({ allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const fail = (message: string): never => {
  process.stderr.write(`sign: ${message}\n\n${HELP}\n`);
  process.exit(2);
};
const key = process.env.GATEWAY_CLUSTER_KEY;
if (!key || Buffer.byteLength(key) < 32) fail("GATEWAY_CLUSTER_KEY must be set (at least 32 bytes), the same as the gateway's");
const [topic, payload] = positionals;
if (!topic || /[#+\0]/.test(topic)) fail('a topic (no wildcards) is required');

const chunks: Buffer[] = [];
if (payload === undefined) for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const body = payload === undefined ? Buffer.concat(chunks) : Buffer.from(payload);
process.stdout.write(new ControlAuth(key!, Number.POSITIVE_INFINITY).sign(topic!, body));
