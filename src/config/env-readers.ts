/**
 * Reading one environment variable against its ENV_TABLE entry: the raw value or its default,
 * numbers in range, enums, broker URLs, lists and files, each refusal naming the variable
 * (GW_ERR_CONFIG_INVALID). load-config.ts and load-transport.ts build the config from these.
 */
import { readFileSync } from 'node:fs';
import { GatewayError } from '../errors/gateway-error.js';
import { ENV_TABLE, type EnvVar } from './env-table.js';

export type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, v: EnvVar): string | undefined {
  const value = env[v.name];
  return value === undefined || value.trim() === '' ? v.default : value.trim();
}

export function invalid(v: EnvVar, why: string, got: string): never {
  throw new GatewayError('GW_ERR_CONFIG_INVALID', `${v.name} ${why} (got ${JSON.stringify(got)})`);
}

export function readInt(env: Env, v: EnvVar): number | undefined {
  const text = raw(env, v);
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text)) invalid(v, 'must be a whole number', text);
  const n = Number(text);
  if ((v.min !== undefined && n < v.min) || (v.max !== undefined && n > v.max)) {
    invalid(v, `must be between ${v.min} and ${v.max}`, text);
  }
  return n;
}

export function readString(env: Env, v: EnvVar): string | undefined {
  const text = raw(env, v);
  if (text === undefined) return undefined;
  if (v.kind === 'enum' && !v.values!.includes(text)) invalid(v, `must be one of ${v.values!.join(', ')}`, text);
  if (v.kind === 'url') {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      invalid(v, 'must be a URL such as mqtt://broker:1883', text);
    }
    if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'].includes(url.protocol)) {
      invalid(v, 'must use mqtt://, mqtts://, tcp://, ssl://, ws:// or wss://', text);
    }
  }
  return text;
}

export function readList(env: Env, v: EnvVar, allowEmpty = false): string[] {
  const text = raw(env, v) ?? '';
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0 && !allowEmpty) invalid(v, 'must name at least one item', text);
  return items;
}

export function readFile(v: EnvVar, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    invalid(v, `names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, path);
  }
}

const byName = new Map(ENV_TABLE.map((v) => [v.name, v]));
export function spec(name: string): EnvVar {
  const v = byName.get(name);
  if (!v) throw new Error(`config: ${name} is not in ENV_TABLE`);
  return v;
}

/** Readers bound to one environment, as the loaders take them. */
export type IntReader = (name: string) => number | undefined;
export type StrReader = (name: string) => string | undefined;
