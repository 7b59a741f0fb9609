/**
 * The cluster key the test gateways get (gateway-process.ts sets GATEWAY_CLUSTER_KEY to it unless a
 * test names another), and the signing recipe of docs/guide/security.md written out on its own, as a backend would,
 * so the tests check the documented wire format and not just the gateway against itself.
 */
import { createHmac } from 'node:crypto';

export const TEST_CLUSTER_KEY = 'test-cluster-key-0123456789abcdef0123456789abcdef';

/** `GWMAC1 <ts> <hex HMAC-SHA256(key, "GWMAC1\0" topic "\0" ts "\0" body)>\n<body>` */
export function signControl(topic: string, body: string | Buffer, key = TEST_CLUSTER_KEY, nowS = Math.floor(Date.now() / 1000)): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const ts = String(nowS);
  const mac = createHmac('sha256', key)
    .update(Buffer.concat([Buffer.from(`GWMAC1\0${topic}\0${ts}\0`), bytes]))
    .digest('hex');
  return Buffer.concat([Buffer.from(`GWMAC1 ${ts} ${mac}\n`), bytes]);
}
