/** Azure Web PubSub helpers: a gateway with an access key and equipment, and the official SDKs pointed at it. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebPubSubServiceClient } from '@azure/web-pubsub';
import { WebPubSubClient } from '@azure/web-pubsub-client';
import { onTestFinished } from 'vitest';
import { channelEnv } from './channels.js';
import { startGateway, tempDataDir, type GatewayProcess } from './gateway-process.js';
import { startTcpRelay } from './tcp-relay.js';

export const ACCESS_KEY = 'local-access-key-with-at-least-32-bytes';

export const EQUIPMENT = [
  { code: 'CAM-101', kind: 'truck', active: true },
  { code: 'CAM-102', kind: 'truck', active: true },
  { code: 'EXC-001', kind: 'excavator', active: true },
  { code: 'EXC-009', kind: 'excavator', active: false },
];

export async function startAzureGateway(extra: Record<string, string> = {}): Promise<GatewayProcess> {
  const dir = tempDataDir();
  const file = join(dir, 'equipment.json');
  writeFileSync(file, JSON.stringify(EQUIPMENT));
  return startGateway({
    env: channelEnv({
      GATEWAY_DATA_DIR: dir,
      GATEWAY_AZURE_ACCESS_KEY: ACCESS_KEY,
      GATEWAY_EQUIPMENT_FILE: file,
      GATEWAY_AZURE_HUBS: 'extraccion,chat',
      ...extra,
    }),
  });
}

export const connectionString = (gw: GatewayProcess, key = ACCESS_KEY) => `Endpoint=http://127.0.0.1:${gw.port};AccessKey=${key};Version=1.0;`;

export function serviceClient(gw: GatewayProcess, hub = 'extraccion', key = ACCESS_KEY): WebPubSubServiceClient {
  return new WebPubSubServiceClient(connectionString(gw, key), hub, { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } });
}

/** An official client, started, stopped when the test ends. `url` gives each (re)connection's URL. */
export async function startClient(url: () => Promise<string>, options: ConstructorParameters<typeof WebPubSubClient>[1] = {}): Promise<WebPubSubClient> {
  const client = new WebPubSubClient({ getClientAccessUrl: url }, { messageRetryOptions: { maxRetries: 0 }, ...options });
  onTestFinished(() => client.stop());
  await client.start();
  return client;
}

/** Collects the group and server messages a client receives; `next(n)` waits for the first n. */
export function collect(client: WebPubSubClient): { messages: any[]; until(n: number, timeoutMs?: number): Promise<any[]> } {
  const messages: any[] = [];
  let waiters: (() => void)[] = [];
  const push = (m: unknown) => {
    messages.push(m);
    for (const w of waiters) w();
  };
  client.on('group-message', (e) => push(e.message));
  client.on('server-message', (e) => push(e.message));
  return {
    messages,
    until(n, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`got ${messages.length} of ${n} messages: ${JSON.stringify(messages).slice(0, 500)}`)), timeoutMs);
        const check = () => {
          if (messages.length < n) return;
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== check);
          resolve(messages.slice(0, n));
        };
        waiters.push(check);
        check();
      });
    },
  };
}

/** A loopback TCP proxy in front of the gateway whose connections can be cut (a network drop; reconnects go through). */
export async function startProxy(targetPort: number): Promise<{ port: number; cut(): void; close(): Promise<void> }> {
  const relay = await startTcpRelay(targetPort);
  return { port: relay.port, cut: () => relay.drop(), close: () => relay.close() };
}
