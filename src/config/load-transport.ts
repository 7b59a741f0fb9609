/**
 * The settings of the gateway's network edges and its bus login: trusted proxies, native TLS,
 * the embedded broker's logins and anonymous rule, and the gateway's own login and TLS to an
 * external broker. Files (certificates, keys, user lists) are read and checked here, so each
 * failure names its variable.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { parseBrokerUsers, type BrokerUser } from '../broker/broker-users.js';
import { parseProxyEntry } from '../edge/client-address.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { BrokerConfig, MqttConfig, TlsConfig } from './config.js';
import { invalid, readFile, readList, spec, type Env, type IntReader, type StrReader } from './env-readers.js';

export function loadTrustedProxies(env: Env): string[] {
  const v = spec('GATEWAY_TRUSTED_PROXIES');
  const entries = readList(env, v, true);
  for (const entry of entries) {
    try {
      parseProxyEntry(entry);
    } catch (err) {
      invalid(v, (err as Error).message, entry);
    }
  }
  return entries;
}

/**
 * GATEWAY_TLS_*: uWS reads the files itself and only says "App construction failed", so they are
 * loaded here first and each failure names its variable.
 */
export function loadTls(str: StrReader): TlsConfig | undefined {
  const certFile = str('GATEWAY_TLS_CERT');
  const keyFile = str('GATEWAY_TLS_KEY');
  const passphrase = str('GATEWAY_TLS_PASSPHRASE');
  const caFile = str('GATEWAY_TLS_CA');
  if (certFile === undefined && keyFile === undefined) {
    for (const name of ['GATEWAY_TLS_PASSPHRASE', 'GATEWAY_TLS_CA']) {
      if (str(name) !== undefined) invalid(spec(name), 'needs GATEWAY_TLS_CERT and GATEWAY_TLS_KEY', name === 'GATEWAY_TLS_CA' ? caFile! : '[redacted]');
    }
    return undefined;
  }
  if (certFile === undefined) invalid(spec('GATEWAY_TLS_CERT'), 'must be set with GATEWAY_TLS_KEY', '');
  if (keyFile === undefined) invalid(spec('GATEWAY_TLS_KEY'), 'must be set with GATEWAY_TLS_CERT', '');
  const certVar = spec('GATEWAY_TLS_CERT');
  const keyVar = spec('GATEWAY_TLS_KEY');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFile(certVar, certFile));
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    invalid(certVar, `is not a PEM certificate (${(err as Error).message})`, certFile);
  }
  const keyPem = readFile(keyVar, keyFile);
  let key;
  try {
    key = createPrivateKey({ key: keyPem, passphrase });
  } catch (err) {
    const why =
      /passphrase|decrypt|bad decrypt/i.test((err as Error).message) || (passphrase === undefined && keyPem.includes('ENCRYPTED'))
        ? 'cannot be decrypted: GATEWAY_TLS_PASSPHRASE is missing or wrong'
        : `is not a PEM private key (${(err as Error).message})`;
    invalid(keyVar, why, keyFile);
  }
  if (!cert.checkPrivateKey(key)) invalid(keyVar, 'is not the private key of GATEWAY_TLS_CERT', keyFile);
  if (caFile !== undefined) {
    const caVar = spec('GATEWAY_TLS_CA');
    try {
      new X509Certificate(readFile(caVar, caFile));
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      invalid(caVar, `is not a PEM certificate (${(err as Error).message})`, caFile);
    }
  }
  return { certFile, keyFile, passphrase, caFile };
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can reach the broker. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function loadBroker(int: IntReader, str: StrReader): BrokerConfig {
  const host = str('GATEWAY_BROKER_HOST')!;
  const usersVar = spec('GATEWAY_BROKER_USERS');
  const text = str('GATEWAY_BROKER_USERS');
  let users: BrokerUser[] = [];
  if (text !== undefined) {
    try {
      users = parseBrokerUsers(text.startsWith('@') ? readFile(usersVar, text.slice(1)) : text);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      invalid(usersVar, (err as Error).message, text.startsWith('@') ? text : '[redacted]');
    }
  }
  const setting = str('GATEWAY_BROKER_ANONYMOUS')!;
  const anonymous = setting === 'auto' ? (users.length === 0 && isLoopback(host) ? 'telemetry' : 'none') : (setting as 'telemetry' | 'none');
  return { host, port: int('GATEWAY_BROKER_PORT')!, users, anonymous };
}

export function loadMqttLogin(str: StrReader): Pick<MqttConfig, 'username' | 'password' | 'ca' | 'cert' | 'key'> {
  const pem = (name: string) => {
    const path = str(name);
    return path === undefined ? undefined : readFile(spec(name), path);
  };
  const cert = pem('GATEWAY_MQTT_CERT');
  const key = pem('GATEWAY_MQTT_KEY');
  if ((cert === undefined) !== (key === undefined))
    invalid(
      spec(cert === undefined ? 'GATEWAY_MQTT_CERT' : 'GATEWAY_MQTT_KEY'),
      'must be set together with ' + (cert === undefined ? 'GATEWAY_MQTT_KEY' : 'GATEWAY_MQTT_CERT'),
      '',
    );
  return { username: str('GATEWAY_MQTT_USERNAME'), password: str('GATEWAY_MQTT_PASSWORD'), ca: pem('GATEWAY_MQTT_CA'), cert, key };
}
