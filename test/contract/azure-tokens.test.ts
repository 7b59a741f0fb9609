/**
 * Azure Web PubSub connection strings and access tokens, checked against what the official
 * `@azure/web-pubsub` service SDK really produces: its parsed endpoint, its client tokens, and the
 * Authorization header of a real REST call (captured by a local HTTP server on port 0).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebPubSubServiceClient } from '@azure/web-pubsub';
import { decodeJwt, SignJWT } from 'jose';
import { describe, expect, it, onTestFinished } from 'vitest';
import { AzureAccessTokens } from '../../src/features/azure/access-tokens.js';
import { formatConnectionString, parseConnectionString } from '../../src/features/azure/connection-string.js';

const KEY = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg=';

describe('connection strings', () => {
  it('parse like the SDK', () => {
    for (const text of [
      `Endpoint=http://localhost:8080;Port=8080;AccessKey=${KEY};Version=1.0;`,
      `endpoint=http://localhost;port=9000;accesskey=${KEY}`,
      `Endpoint=example.webpubsub.azure.com;AccessKey=${KEY};`,
      `Endpoint=http://localhost:8080;Port=;AccessKey=${KEY}`,
    ]) {
      const sdk = new WebPubSubServiceClient(text, 'chat');
      expect(parseConnectionString(text).endpoint, text).toBe(sdk.endpoint);
    }
    expect(parseConnectionString(`Endpoint=http://h;AccessKey=${KEY}`).accessKey).toBe(KEY); // '=' in the key survives
    expect(() => parseConnectionString(`AccessKey=${KEY}`)).toThrow(/missing endpoint/);
    expect(() => parseConnectionString('Endpoint=http://h')).toThrow(/missing access key/);
    expect(() => parseConnectionString(`Endpoint=http://h;Port=99999;AccessKey=${KEY}`)).toThrow(/Port/);
    const local = formatConnectionString('http://localhost:8080', KEY);
    expect(new WebPubSubServiceClient(local, 'chat').endpoint).toBe('http://localhost:8080/');
  });
});

describe('client access tokens', () => {
  const tokens = new AzureAccessTokens(KEY);
  const sdk = new WebPubSubServiceClient(`Endpoint=http://localhost:8080;AccessKey=${KEY};Version=1.0;`, 'extraccion');

  it('accept what getClientAccessToken makes, with its user, roles and groups', async () => {
    const { token, url } = await sdk.getClientAccessToken({ userId: 'EXC-001', roles: ['webpubsub.joinLeaveGroup.excavadoras'], groups: ['excavadoras'] });
    expect(url).toMatch(/^ws:\/\/localhost:8080\/client\/hubs\/extraccion\?access_token=/);
    const grant = await tokens.verifyClient(token, 'extraccion');
    expect(grant).toMatchObject({ userId: 'EXC-001', roles: ['webpubsub.joinLeaveGroup.excavadoras'], groups: ['excavadoras'] });
    expect(grant.expiresAt).toBeGreaterThan(Date.now() + 59 * 60_000);
    expect(await tokens.verifyClient((await sdk.getClientAccessToken()).token, 'extraccion')).toMatchObject({ userId: null, roles: [], groups: [] });
  });

  it('make the same claims as the SDK', async () => {
    const ours = decodeJwt(await tokens.signClient('http://localhost:8080', 'extraccion', { userId: 'u', roles: ['r'], groups: ['g'] }));
    const theirs = decodeJwt((await sdk.getClientAccessToken({ userId: 'u', roles: ['r'], groups: ['g'] })).token);
    expect(ours).toEqual({ ...theirs, iat: ours.iat, exp: ours.exp });
    expect(await tokens.verifyClient(await tokens.signClient('ws://localhost:8080', 'extraccion', { userId: 'u' }), 'extraccion')).toMatchObject({
      userId: 'u',
    });
  });

  it('refuse another hub, another key, an expired token, garbage and nothing', async () => {
    const { token } = await sdk.getClientAccessToken({ userId: 'x' });
    await expect(tokens.verifyClient(token, 'other')).rejects.toMatchObject({ code: 'GW_ERR_TOKEN_INVALID', message: expect.stringMatching(/audience/) });
    const forged = await new WebPubSubServiceClient(`Endpoint=http://localhost:8080;AccessKey=someone-elses-key;`, 'extraccion').getClientAccessToken();
    await expect(tokens.verifyClient(forged.token, 'extraccion')).rejects.toMatchObject({ code: 'GW_ERR_TOKEN_INVALID' });
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setAudience('http://localhost:8080/client/hubs/extraccion')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(new TextEncoder().encode(KEY));
    await expect(tokens.verifyClient(expired, 'extraccion')).rejects.toMatchObject({ code: 'GW_ERR_TOKEN_EXPIRED' });
    await expect(tokens.verifyClient('not.a.jwt', 'extraccion')).rejects.toMatchObject({ code: 'GW_ERR_TOKEN_INVALID' });
    await expect(tokens.verifyClient(undefined, 'extraccion')).rejects.toMatchObject({ code: 'GW_ERR_TOKEN_MISSING' });
  });
});

describe('REST tokens', () => {
  it('accept the Authorization header of a real SDK call for its path, and nothing else', async () => {
    const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
    const server = createServer((req, res) => {
      seen.push({ url: req.url!, headers: req.headers });
      req.resume();
      req.on('end', () => res.writeHead(202).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    const client = new WebPubSubServiceClient(`Endpoint=http://127.0.0.1;Port=${port};AccessKey=${KEY};Version=1.0;`, 'chat', {
      allowInsecureConnection: true,
    });
    await client.sendToAll({ hello: 'world' }, { filter: "userId ne 'x'" });
    await client.group('excavadoras').sendToAll('text', { contentType: 'text/plain' });

    const tokens = new AzureAccessTokens(KEY);
    for (const { url, headers } of seen) {
      const bearer = /^Bearer (.+)$/.exec(headers.authorization ?? '')![1];
      const path = url.split('?')[0];
      await tokens.verifyRest(bearer, path);
      await expect(tokens.verifyRest(bearer, '/api/hubs/other/:send')).rejects.toMatchObject({ code: 'GW_ERR_TOKEN_INVALID' });
      await expect(new AzureAccessTokens('forged-key').verifyRest(bearer, path)).rejects.toMatchObject({ code: 'GW_ERR_TOKEN_INVALID' });
    }
    expect(seen.map((s) => s.url.split('?')[0])).toEqual(['/api/hubs/chat/:send', '/api/hubs/chat/groups/excavadoras/:send']);
  });
});
