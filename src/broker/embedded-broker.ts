/**
 * The embedded MQTT broker (aedes) that `npm start` runs when MQTT_URL is unset, so devices can
 * publish to port 1883 with nothing else installed. In production point MQTT_URL at Mosquitto,
 * EMQX or HiveMQ instead; the gateway's path is the same either way.
 *
 * Locked down by default: it binds to loopback (GATEWAY_BROKER_HOST), the gateway connects with a
 * login of its own (random per start), devices and anonymous clients may publish only telemetry
 * and never touch a control topic (broker/topic-rights.ts). Refusals are counted in the global
 * stats row (this runs on the main thread, the row's only writer) and logged, rate-limited,
 * without payloads.
 */
import { createServer, type Server, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/config.js';
import { isLoopback } from '../config/load-transport.js';
import type { SharedStats } from '../metrics/shared-stats.js';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import { BrokerLogins, GATEWAY_USERNAME, secretsEqual } from './broker-users.js';
import { TopicRights, type BrokerRole } from './topic-rights.js';

interface BrokerLogin {
  readonly username: string;
  readonly password: string;
}

export interface EmbeddedBroker {
  readonly port: number;
  /** URL the gateway's own MQTT client uses (loopback). */
  readonly url: string;
  /** The gateway's own login (random per start). */
  readonly login: BrokerLogin;
  close(): Promise<void>;
}

function authError(returnCode: 2 | 3 | 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export async function startEmbeddedBroker(config: GatewayConfig, stats: SharedStats, logger: Logger): Promise<EmbeddedBroker> {
  const broker = config.broker;
  const rights = TopicRights.fromConfig(config);
  const logins = new BrokerLogins(broker.users);
  const login: BrokerLogin = { username: GATEWAY_USERNAME, password: randomBytes(32).toString('base64url') };
  const roles = new WeakMap<Client, BrokerRole>();
  const refusals = new RateLimitedLog(logger);
  const count = (key: 'broker_connects_refused_total' | 'broker_publishes_refused_total' | 'broker_subscribes_refused_total') =>
    stats.setGlobal(key, stats.getGlobal(key) + 1);
  const who = (client: Client | null) => {
    const role = client ? roles.get(client) : undefined;
    return { clientId: client?.id.slice(0, 128), role, address: (client?.conn as { remoteAddress?: string } | undefined)?.remoteAddress };
  };

  const aedes = await Aedes.createBroker({
    authenticate(client, username, password, done) {
      const refuse = (code: 2 | 3 | 4 | 5, why: string) => {
        count('broker_connects_refused_total');
        refusals.warn({ clientId: client.id.slice(0, 128), username: username?.slice(0, 128), why }, 'broker refused a connection');
        done(authError(code, why), false);
      };
      const accept = (role: BrokerRole) => {
        // A device taking the gateway's client id would end the gateway's session (MQTT takeover).
        if (role !== 'gateway' && role !== 'backend' && client.id === config.mqtt.clientId) {
          refuse(2, 'client id reserved to the gateway');
          return;
        }
        roles.set(client, role);
        done(null, true);
      };
      if (username === undefined || username === '') {
        if (broker.anonymous === 'telemetry') accept('anonymous');
        else refuse(5, 'anonymous clients not allowed (GATEWAY_BROKER_ANONYMOUS)');
        return;
      }
      if (username === GATEWAY_USERNAME) {
        if (password !== undefined && secretsEqual(password, login.password)) accept('gateway');
        else refuse(4, 'bad username or password');
        return;
      }
      logins.check(username, password).then(
        (role) => (role === undefined ? refuse(4, 'bad username or password') : accept(role)),
        (err: unknown) => {
          logger.error({ err, username: username.slice(0, 128) }, 'broker login check failed');
          refuse(3, 'login check failed');
        },
      );
    },
    authorizePublish(client, packet, done) {
      const role = client ? roles.get(client) : 'gateway';
      const topic = packet.topic;
      // `$` topics are the broker's own ($SYS), as in aedes' default.
      if (role !== undefined && topic.charCodeAt(0) !== 36 && rights.mayPublish(role, topic)) {
        done(null);
        return;
      }
      count('broker_publishes_refused_total');
      refusals.warn({ ...who(client), topic: topic.slice(0, 200), bytes: packet.payload.length }, 'broker refused a publish (the client is disconnected)');
      done(new Error('publish not authorized'));
    },
    authorizeSubscribe(client, sub, done) {
      const role = roles.get(client);
      if (role !== undefined && rights.maySubscribe(role, sub.topic)) {
        done(null, sub);
        return;
      }
      count('broker_subscribes_refused_total');
      refusals.warn({ ...who(client), filter: sub.topic.slice(0, 200) }, 'broker refused a subscription');
      done(null, null);
    },
  });
  const server: Server = createServer((socket) => {
    // Nagle on broker sockets costs tens of ms per message (docs/notes/latency.md).
    socket.setNoDelay(true);
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(broker.port, broker.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const devices = logins.count('device');
  const backends = logins.count('backend');
  logger.info(
    {
      host: broker.host,
      port,
      reachableFrom: isLoopback(broker.host) ? 'this machine only' : 'the network',
      anonymous: broker.anonymous === 'telemetry' ? `may publish telemetry only (${config.mqtt.topics.join(', ')})` : 'refused',
      users: { device: devices, backend: backends },
      devicesMayPublish: config.mqtt.topics,
      controlTopics: rights.controlFilters,
      controlTopicsOpenTo: 'the gateway and backend users only',
    },
    'embedded MQTT broker listening',
  );
  if (!isLoopback(broker.host) && broker.anonymous === 'telemetry') {
    logger.warn(
      { host: broker.host },
      'the embedded broker accepts anonymous telemetry from the network (GATEWAY_BROKER_ANONYMOUS=telemetry): anyone who reaches the port can publish positions',
    );
  }
  if (!isLoopback(broker.host) && broker.anonymous === 'none' && devices === 0) {
    logger.warn(
      { host: broker.host },
      'the embedded broker listens on the network but has no device users and refuses anonymous clients: no device can connect (set GATEWAY_BROKER_USERS)',
    );
  }
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    login,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Connected clients keep the server open; aedes.close ended them, but be explicit.
        server.unref();
      });
    },
  };
}
