/**
 * Azure Web PubSub's event handler settings, per hub (GATEWAY_AZURE_EVENT_HANDLERS), as the
 * service has them: an ordered list of { URL template, user event pattern, system events }; for
 * each event the first setting that names it wins. The template may hold `{hub}` and `{event}`
 * (not in the host); the abuse-protection OPTIONS goes to the template with `{event}` = `validate`.
 *
 *   {"chat": [{"urlTemplate": "http://app:3000/api/webpubsub/hubs/{hub}/",
 *              "userEventPattern": "*", "systemEvents": ["connect", "connected", "disconnected"]}]}
 *
 * Pure: parsed in load-config.ts, used by edge/azure-upstream.ts on the thread holding the connection.
 */
import { HUB_NAME } from './commands.js';

export const SYSTEM_EVENTS = ['connect', 'connected', 'disconnected'] as const;
export type SystemEvent = (typeof SYSTEM_EVENTS)[number];

export interface EventHandlerSetting {
  readonly urlTemplate: string;
  /** The user events it takes: null for every one (`*`), else their names. */
  readonly userEvents: readonly string[] | null;
  readonly systemEvents: readonly SystemEvent[];
}

/** Hub → its settings, in priority order. A plain object: the config crosses to the worker threads. */
export type EventHandlers = Readonly<Record<string, readonly EventHandlerSetting[]>>;

const SETTING_KEYS = new Set(['urlTemplate', 'userEventPattern', 'systemEvents']);
/** A user event name as the client protocols allow it (the `event` of a json `event` frame). */
const EVENT_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Throws an Error saying what is wrong (load-config.ts names the variable). */
export function parseEventHandlers(value: unknown, servesHub: (hub: string) => boolean): EventHandlers {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('must be a JSON object of hub → event handler settings');
  const out: Record<string, EventHandlerSetting[]> = {};
  for (const [hub, list] of Object.entries(value)) {
    if (!HUB_NAME.test(hub)) throw new Error(`names ${JSON.stringify(hub)}, not a hub name (a letter, then up to 127 letters, digits or _\`,.[])`);
    if (!servesHub(hub)) throw new Error(`names hub ${JSON.stringify(hub)}, which GATEWAY_AZURE_HUBS does not serve`);
    const settings = Array.isArray(list) ? list : [list];
    if (settings.length === 0) throw new Error(`hub ${hub}: needs at least one setting`);
    out[hub] = settings.map((s, i) => parseSetting(s, `hub ${hub}, setting ${i}`));
  }
  return out;
}

function parseSetting(s: unknown, where: string): EventHandlerSetting {
  if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new Error(`${where}: must be an object {"urlTemplate","userEventPattern","systemEvents"}`);
  const o = s as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!SETTING_KEYS.has(key)) throw new Error(`${where}: unknown field ${JSON.stringify(key)}`);
  if (typeof o.urlTemplate !== 'string') throw new Error(`${where}: urlTemplate must be a string`);
  checkTemplate(o.urlTemplate, where);
  const pattern = o.userEventPattern ?? '';
  if (typeof pattern !== 'string') throw new Error(`${where}: userEventPattern must be a string ("*", or names separated by commas)`);
  const names = pattern
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  for (const n of names) if (n !== '*' && !EVENT_NAME.test(n)) throw new Error(`${where}: userEventPattern has ${JSON.stringify(n)}, not an event name`);
  const system = o.systemEvents ?? [];
  if (!Array.isArray(system) || system.some((e) => !(SYSTEM_EVENTS as readonly unknown[]).includes(e))) {
    throw new Error(`${where}: systemEvents must be a list of ${SYSTEM_EVENTS.join(', ')}`);
  }
  return { urlTemplate: o.urlTemplate, userEvents: names.includes('*') ? null : names, systemEvents: [...new Set(system as SystemEvent[])] };
}

function checkTemplate(template: string, where: string): void {
  const placeholders = template.match(/\{[^}]*\}/g) ?? [];
  for (const p of placeholders) if (p !== '{hub}' && p !== '{event}') throw new Error(`${where}: urlTemplate has ${p}; only {hub} and {event} are supported`);
  let url: URL;
  try {
    url = new URL(resolveUrl(template, 'hub', 'event'));
  } catch {
    throw new Error(`${where}: urlTemplate ${JSON.stringify(template)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${where}: urlTemplate must be http:// or https://`);
  const authority = template.slice(template.indexOf('//') + 2).split(/[/?#]/)[0];
  if (authority.includes('{')) throw new Error(`${where}: urlTemplate may not have a parameter in the host`);
}

/** The template with `{hub}` and `{event}` filled in (percent-encoded). */
export function resolveUrl(template: string, hub: string, event: string): string {
  return template.replaceAll('{hub}', encodeURIComponent(hub)).replaceAll('{event}', encodeURIComponent(event));
}

/** The setting that takes a system event, or a user event (`system` false), for a hub; undefined when none does. */
export function settingFor(handlers: EventHandlers, hub: string, event: string, system: boolean): EventHandlerSetting | undefined {
  const settings = handlers[hub];
  if (settings === undefined) return undefined;
  return settings.find((s) => (system ? s.systemEvents.includes(event as SystemEvent) : s.userEvents === null || s.userEvents.includes(event)));
}
