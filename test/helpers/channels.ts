/** REST and auth helpers for the entity-channel tests (real gateway, real SQLite). */
import type { GatewayProcess } from './gateway-process.js';
import { AUDIENCE, ISSUER, SECRET, mintJwt } from './tokens.js';
import { BACKEND_BUS_ENV } from './publisher.js';
import { connectStream, type ConnectOptions, type Frame, type StreamClient } from './stream-client.js';

export const CHANNEL_ACL = {
  roles: {
    admin: { devices: ['*'], channels: ['*'], groups: ['*'], publish: ['*'] },
    supervisor: { channels: ['tasks', 'efectivos'] },
    viewer: { channels: ['sensors'] },
  },
};

/** A gateway environment with an HS256 secret and the ACL above, and the bus's test backend login (publisher.ts). */
export function channelEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    GATEWAY_JWT_SECRET: SECRET,
    GATEWAY_JWT_ISSUER: ISSUER,
    GATEWAY_JWT_AUDIENCE: AUDIENCE,
    GATEWAY_ACL: JSON.stringify(CHANNEL_ACL),
    ...BACKEND_BUS_ENV,
    ...extra,
  };
}

export const adminToken = () => mintJwt('admin-1', { roles: ['admin'] });

export interface RestReply {
  readonly status: number;
  readonly body: any;
}

export async function rest(gw: GatewayProcess, method: string, path: string, body?: unknown, token?: string): Promise<RestReply> {
  const res = await fetch(`${gw.http}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: parsed };
}

/** A client on /api/v1/ws (`path` '/api/v1/ws') or /ws/{channel}, waiting for connection_established. */
export async function connectChannel(gw: GatewayProcess, pathAndQuery: string, options: ConnectOptions = {}): Promise<StreamClient & { established: Frame }> {
  const [path, query = ''] = pathAndQuery.split('?');
  const client = await connectStream(gw.ws, query ? `?${query}` : '', { ...options, path });
  const established = await client.next((f) => f.type === 'connection_established' || f.type === 'error');
  return Object.assign(client, { established });
}

export const isEvent = (f: Frame) => typeof (f as any).offset === 'number' && f.type !== 'connection_established';
