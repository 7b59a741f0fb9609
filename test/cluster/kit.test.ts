/**
 * Issue 17 item 5, the kit: `npm run cluster:local` (scripts/cluster-local.ts) runs deploy/compose's topology
 * as processes (PostgreSQL, two bridged Mosquittos with logins, three gateways, nginx in front), the
 * way a user runs it: the built command, `--port 0 --json`, stopped with SIGINT (Ctrl-C). Through the
 * balancer: three subscribers land one on each node (round robin, no stickiness), a REST create on
 * another request reaches all three, and every node is ready; then everything it started is gone.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SignJWT } from 'jose';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectChannel, isEvent } from '../helpers/channels.js';
import { metric } from '../helpers/cluster.js';
import { REPO_ROOT, type GatewayProcess } from '../helpers/gateway-process.js';

interface Started {
  readonly url: string;
  readonly nodes: { name: string; http: string; pid: number; broker: string }[];
  readonly brokers: { name: string; url: string; pid: number }[];
  readonly nginxPid: number;
  readonly secrets: Record<string, string>;
  readonly dir: string;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Only what the helpers read: the base URLs. */
const endpoint = (http: string) => ({ http, ws: http.replace(/^http/, 'ws') }) as GatewayProcess;

describe('the kit: cluster-local runs the compose topology', { timeout: 40_000 }, () => {
  it('through nginx: one subscriber per node, a REST create reaches all three, every node ready; Ctrl-C stops it all', async () => {
    const child = spawn(process.execPath, [`${REPO_ROOT}dist/scripts/cluster-local.js`, '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    onTestFinished(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await exited;
      }
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const started = await new Promise<Started>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        out += c;
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Started);
      });
      void exited.then((code) => reject(new Error(`cluster-local exited (${code}) before it started: ${stderr}`)));
    });

    expect(started.nodes.map((n) => n.name)).toEqual(['gateway-1', 'gateway-2', 'gateway-3']);
    // compose.yaml: nodes 1 and 3 on broker A, node 2 on B (the bridge carries the events across).
    const [a, b] = started.brokers;
    expect(started.nodes.map((n) => n.broker)).toEqual([a.url, b.url, a.url]);

    // Readiness: each node directly, and the balancer answers from them.
    for (const node of started.nodes) expect(await (await fetch(`${node.http}/readyz`)).json()).toEqual({ status: 'ready' });
    expect((await fetch(`${started.url}/readyz`)).status).toBe(200);

    // Three subscribers through the balancer, one after the other: round robin puts one on each node.
    const subscribers = [];
    for (let i = 0; i < 3; i++) {
      const client = await connectChannel(endpoint(started.url), '/api/v1/ws?channel=sensors');
      expect(client.established.type).toBe('connection_established');
      subscribers.push(client);
    }
    const perNode = await Promise.all(started.nodes.map((n) => metric(endpoint(n.http), 'channel_connections', started.secrets.GATEWAY_OPERATOR_TOKEN)));
    expect(perNode).toEqual([1, 1, 1]);

    // A REST create on another request through the balancer (the keys made for this run).
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('kit-admin')
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(new TextEncoder().encode(started.secrets.GATEWAY_JWT_SECRET));
    const res = await fetch(`${started.url}/api/v1/sensores/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tipo: 'temperatura', modelo: 'DHT22' }),
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: number };
    for (const client of subscribers) {
      const event = (await client.next((f) => isEvent(f) && (f as any).entity_id === created.id, 10_000)) as any;
      expect(event).toMatchObject({ event_type: 'created', entity_id: created.id, offset: 1 });
    }
    for (const client of subscribers) client.ws.close();

    // Ctrl-C: exit 0, and nothing it started is left.
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    for (const pid of [...started.nodes.map((n) => n.pid), ...started.brokers.map((x) => x.pid), started.nginxPid]) expect(alive(pid)).toBe(false);
    expect(existsSync(started.dir)).toBe(false);
  });
});
