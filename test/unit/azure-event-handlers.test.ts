import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { resolveUrl, settingFor } from '../../src/features/azure/event-handlers.js';

const handlers = (value: unknown, env: Record<string, string> = {}) =>
  loadConfig({ GATEWAY_AZURE_HUBS: 'chat,ops', GATEWAY_AZURE_EVENT_HANDLERS: typeof value === 'string' ? value : JSON.stringify(value), ...env }).azure;

function refusal(value: unknown, env: Record<string, string> = {}): string {
  try {
    handlers(value, env);
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('GW_ERR_CONFIG_INVALID');
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('GATEWAY_AZURE_EVENT_HANDLERS', () => {
  it("reads the service's event handler settings per hub, first match wins", () => {
    const azure = handlers({
      chat: [
        { urlTemplate: 'http://app:3000/api/{hub}/{event}', userEventPattern: 'echo, ping', systemEvents: ['connect'] },
        { urlTemplate: 'https://other/all', userEventPattern: '*', systemEvents: ['connected', 'disconnected', 'connected'] },
      ],
      ops: { urlTemplate: 'http://ops/hook' },
    });
    const h = azure.eventHandlers;
    expect(settingFor(h, 'chat', 'connect', true)?.urlTemplate).toBe('http://app:3000/api/{hub}/{event}');
    expect(settingFor(h, 'chat', 'connected', true)?.urlTemplate).toBe('https://other/all');
    expect(settingFor(h, 'chat', 'echo', false)?.urlTemplate).toBe('http://app:3000/api/{hub}/{event}');
    expect(settingFor(h, 'chat', 'anything', false)?.urlTemplate).toBe('https://other/all');
    expect(settingFor(h, 'chat', 'disconnected', true)?.systemEvents).toEqual(['connected', 'disconnected']);
    expect(settingFor(h, 'ops', 'connect', true)).toBeUndefined(); // no system events, no user events
    expect(settingFor(h, 'ops', 'message', false)).toBeUndefined();
    expect(settingFor(h, 'extraccion', 'connect', true)).toBeUndefined();
    expect(resolveUrl('http://app/api/{hub}/{event}', 'chat', 'validate')).toBe('http://app/api/chat/validate');
    expect(azure.eventHandlerTimeoutMs).toBe(5000);
    expect(azure.eventQueue).toBe(10000);
  });

  it("is empty when unset; the origin defaults to GATEWAY_PUBLIC_URL's host", () => {
    const azure = loadConfig({ GATEWAY_PUBLIC_URL: 'https://Gps.Example.com:8443/x' }).azure;
    expect(azure.eventHandlers).toEqual({});
    expect(azure.webhookOrigin).toBe('gps.example.com:8443');
    expect(loadConfig({ GATEWAY_AZURE_WEBHOOK_ORIGIN: 'gw.local:8080' }).azure.webhookOrigin).toBe('gw.local:8080');
  });

  it('refuses what the service would not take, naming the variable and the place', () => {
    expect(refusal('{nope')).toMatch(/^GATEWAY_AZURE_EVENT_HANDLERS is not valid JSON/);
    expect(refusal([])).toMatch(/must be a JSON object of hub/);
    expect(refusal({ other: { urlTemplate: 'http://a/' } })).toMatch(/hub "other", which GATEWAY_AZURE_HUBS does not serve/);
    expect(refusal({ '1bad': { urlTemplate: 'http://a/' } })).toMatch(/not a hub name/);
    expect(refusal({ chat: [] })).toMatch(/hub chat: needs at least one setting/);
    expect(refusal({ chat: { url: 'http://a/' } })).toMatch(/hub chat, setting 0: unknown field "url"/);
    expect(refusal({ chat: { urlTemplate: 'ftp://a/' } })).toMatch(/must be http:\/\/ or https:\/\//);
    expect(refusal({ chat: { urlTemplate: 'not a url' } })).toMatch(/is not a URL/);
    expect(refusal({ chat: { urlTemplate: 'http://{hub}.com/' } })).toMatch(/parameter in the host/);
    expect(refusal({ chat: { urlTemplate: 'http://a/{user}' } })).toMatch(/only \{hub\} and \{event\}/);
    expect(refusal({ chat: { urlTemplate: 'http://a/', systemEvents: ['joined'] } })).toMatch(
      /systemEvents must be a list of connect, connected, disconnected/,
    );
    expect(refusal({ chat: { urlTemplate: 'http://a/', userEventPattern: 'a b' } })).toMatch(/not an event name/);
    expect(refusal({ chat: { urlTemplate: 'http://a/' } }, { GATEWAY_AZURE_WEBHOOK_ORIGIN: 'http://x' })).toMatch(
      /GATEWAY_AZURE_WEBHOOK_ORIGIN must be a host name/,
    );
  });
});
