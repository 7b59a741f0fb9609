/**
 * The operator auth (GATEWAY_OPERATOR_TOKEN, docs/guide/operations.md "Operator routes"), on a real
 * gateway: each operator route (/api/v1/cluster, /metrics, the outbox dead letters) is 401
 * GW_ERR_OPERATOR_UNAUTHORIZED without a token, with a wrong one and with another scheme, 200 with
 * the right one, counted in auth_failures_total; the probes and the reference-compatible stats stay
 * open; the token never appears in the logs (debug level, a refused and an accepted request each).
 * Without the token: the routes are open and the start says so once (warn).
 */
import { describe, expect, it } from 'vitest';
import { startGateway } from '../helpers/gateway-process.js';

const TOKEN = 'operator-0123456789abcdef-secret';
const PROTECTED = ['/api/v1/cluster', '/metrics', '/api/v1/outbox/dead-letters'];
const OPEN = ['/healthz', '/readyz', '/api/health', '/api/v1/stream/stats', '/ws/stats', '/api/v1/ws/stats', '/api/v1/trips/stats'];

const get = (base: string, path: string, authorization?: string) => fetch(`${base}${path}`, { headers: authorization === undefined ? {} : { authorization } });

describe('GATEWAY_OPERATOR_TOKEN', { timeout: 30_000 }, () => {
  it('guards the operator routes: 401 without or with a wrong token, 200 with it; probes and reference stats stay open; never logged', async () => {
    const gw = await startGateway({ env: { GATEWAY_OPERATOR_TOKEN: TOKEN, GATEWAY_LOG_LEVEL: 'debug' } });
    for (const path of PROTECTED) {
      for (const authorization of [undefined, 'Bearer wrong-token-of-the-same-kind', `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN]) {
        const res = await get(gw.http, path, authorization);
        expect(res.status, `${path} with ${authorization}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect(body.error.code).toBe('GW_ERR_OPERATOR_UNAUTHORIZED');
        expect(body.error.message).not.toContain(TOKEN);
      }
      const ok = await get(gw.http, path, `Bearer ${TOKEN}`);
      expect(ok.status, path).toBe(200);
      expect(await get(gw.http, path, `bearer   ${TOKEN}`).then((r) => r.status)).toBe(200);
    }
    for (const path of OPEN) expect((await get(gw.http, path)).status, path).toBe(200);

    const metrics = await (await get(gw.http, '/metrics', `Bearer ${TOKEN}`)).text();
    const refused = metrics
      .split('\n')
      .filter((l) => l.startsWith('gateway_auth_failures_total'))
      .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    expect(refused).toBe(PROTECTED.length * 5);
    expect(gw.logs.some((l) => l.level === 40 && /GATEWAY_OPERATOR_TOKEN is not set/.test(String(l.msg)))).toBe(false);
    await gw.stop();
    expect(JSON.stringify(gw.logs)).not.toContain(TOKEN);
  });

  it('unset: the operator routes are open, and the start warns once that they are', async () => {
    const gw = await startGateway();
    for (const path of PROTECTED) expect((await get(gw.http, path)).status, path).toBe(200);
    const warnings = gw.logs.filter((l) => /GATEWAY_OPERATOR_TOKEN is not set/.test(String(l.msg)));
    expect(warnings).toHaveLength(1);
    expect(warnings[0].level).toBe(40);
  });

  it('refuses a token too short to be one, naming the variable and not the value', async () => {
    const gw = startGateway({ env: { GATEWAY_OPERATOR_TOKEN: 'short' } });
    await expect(gw).rejects.toThrow(/GATEWAY_OPERATOR_TOKEN must be at least 16/);
  });
});
