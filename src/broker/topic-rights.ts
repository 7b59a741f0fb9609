/**
 * Who may publish and subscribe where on the bus (the embedded broker's authorizePublish and
 * authorizeSubscribe; mosquitto/acl says the same for Mosquitto):
 *
 *   gateway, backend  everything (they run the control topics)
 *   device, anonymous publish only on the telemetry filters (GATEWAY_MQTT_TOPICS) and never on a
 *                     control topic; subscribe to any filter a control topic cannot match (no `$…`)
 *
 * The control topics are the prefixes of GATEWAY_CHANNELS_TOPIC, GATEWAY_EVENTS_TOPIC,
 * GATEWAY_AZURE_TOPIC, GATEWAY_AZURE_PRESENCE_TOPIC, GATEWAY_REVOCATIONS_TOPIC and GATEWAY_WATCHDOG_TOPIC, each with all its
 * subtopics. A device reading them would read other users' notifications and Azure traffic.
 */
import type { GatewayConfig } from '../config/config.js';

export type BrokerRole = 'gateway' | 'backend' | 'device' | 'anonymous';

const HASH = 35; // '#'
const PLUS = 43; // '+'
const SLASH = 47; // '/'
const DOLLAR = 36; // '$'

/**
 * MQTT topic matching of one concrete topic against one filter, without allocating (it runs for
 * every device publish on the broker). `a/#` matches `a` too; wildcards at the first level do not
 * match `$` topics.
 */
export function topicMatches(filter: string, topic: string): boolean {
  const fl = filter.length;
  const tl = topic.length;
  if (tl > 0 && topic.charCodeAt(0) === DOLLAR) {
    const first = filter.charCodeAt(0);
    if (first === HASH || first === PLUS) return false;
  }
  let f = 0;
  let t = 0;
  while (f < fl) {
    const c = filter.charCodeAt(f);
    if (c === HASH) return true;
    if (c === PLUS) {
      while (t < tl && topic.charCodeAt(t) !== SLASH) t++;
      f++;
      continue;
    }
    if (t >= tl || topic.charCodeAt(t) !== c) {
      // `a/#` also matches `a`
      return t === tl && c === SLASH && f + 2 === fl && filter.charCodeAt(f + 1) === HASH;
    }
    f++;
    t++;
  }
  return t === tl;
}

/** True when some topic matches both filters (a subscription to `a` could read what `b` covers). */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  if ((a.charCodeAt(0) === DOLLAR) !== (b.charCodeAt(0) === DOLLAR)) {
    // only a leading wildcard on the other side could reach a $ topic, and it does not
    const dollar = a.charCodeAt(0) === DOLLAR ? y[0] : x[0];
    if (dollar === '#' || dollar === '+') return false;
  }
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true;
    if (p === undefined && q === undefined) return true;
    // one filter ended, the other goes on with a level that is not `#` (that returned above)
    if (p === undefined || q === undefined) return false;
    if (p !== q && p !== '+' && q !== '+') return false;
  }
}

export class TopicRights {
  /** `<prefix>/#` of every control topic. */
  readonly controlFilters: readonly string[];

  constructor(
    readonly telemetryFilters: readonly string[],
    controlPrefixes: readonly string[],
  ) {
    this.controlFilters = [...new Set(controlPrefixes)].map((p) => `${p}/#`);
  }

  static fromConfig(config: GatewayConfig): TopicRights {
    return new TopicRights(config.mqtt.topics, controlPrefixes(config));
  }

  isControl(topic: string): boolean {
    const filters = this.controlFilters;
    for (let i = 0; i < filters.length; i++) if (topicMatches(filters[i], topic)) return true;
    return false;
  }

  mayPublish(role: BrokerRole, topic: string): boolean {
    if (role === 'gateway' || role === 'backend') return true;
    if (this.isControl(topic)) return false;
    const filters = this.telemetryFilters;
    for (let i = 0; i < filters.length; i++) if (topicMatches(filters[i], topic)) return true;
    return false;
  }

  maySubscribe(role: BrokerRole, filter: string): boolean {
    if (role === 'gateway' || role === 'backend') return true;
    // `$SYS/…` (broker internals) and `$share/<group>/…` (a shared subscription on brokers that have them).
    if (filter.charCodeAt(0) === DOLLAR) return false;
    for (const control of this.controlFilters) if (filtersOverlap(filter, control)) return false;
    return true;
  }
}

/** The topic prefixes reserved to the gateway and backends. */
function controlPrefixes(config: GatewayConfig): string[] {
  return [
    config.events.topic,
    config.auth.eventsTopic,
    config.azure.topic,
    config.azure.presence.topic,
    config.share.revocationsTopic,
    config.health.watchdogTopic,
  ];
}
