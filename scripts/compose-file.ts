/**
 * deploy/compose/compose.yaml read as Compose reads it (merge keys, env files, mounted files), for
 * scripts/cluster-local.ts, which runs its topology as plain processes, and for the kit's checks
 * (test/unit/deploy-kit.test.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

const REPO_ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/scripts/') ? '../../' : '../', import.meta.url));
export const COMPOSE_DIR = join(REPO_ROOT, 'deploy', 'compose');

export interface ComposeService {
  readonly image?: string;
  readonly build?: unknown;
  readonly env_file?: string | string[];
  readonly environment?: Record<string, string> | string[];
  readonly volumes?: string[];
  readonly depends_on?: string[] | Record<string, unknown>;
  readonly command?: string[];
}

/** compose.yaml as parsed (merge keys `<<` applied, as Compose does). */
export function readCompose(dir = COMPOSE_DIR): { services: Record<string, ComposeService> } {
  return parseYaml(readFileSync(join(dir, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
}

/** An env file as Compose reads it: KEY=VALUE lines, `#` comments and blank lines skipped. */
export function readEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${path}: not KEY=VALUE: ${line}`);
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** A service's environment: its env files in order, then `environment`. */
export function serviceEnv(service: ComposeService, dir = COMPOSE_DIR): Record<string, string> {
  const files = service.env_file === undefined ? [] : Array.isArray(service.env_file) ? service.env_file : [service.env_file];
  const env: Record<string, string> = {};
  for (const f of files) Object.assign(env, readEnvFile(join(dir, f)));
  const inline = service.environment ?? {};
  if (Array.isArray(inline)) {
    for (const item of inline) {
      const eq = item.indexOf('=');
      env[item.slice(0, eq)] = item.slice(eq + 1);
    }
  } else Object.assign(env, inline);
  return env;
}

/** The host file a service mounts at `target` (a `./file:target[:ro]` volume), as a path in the compose folder. */
export function mountedFile(service: ComposeService, target: string, dir = COMPOSE_DIR): string {
  for (const v of service.volumes ?? []) {
    const [source, to] = v.split(':');
    if (to === target && source.startsWith('.')) return join(dir, source);
  }
  throw new Error(`compose.yaml: no file mounted at ${target}`);
}

export const isGateway = (s: ComposeService) => s.build !== undefined || (s.image ?? '').startsWith('uws-gateway');
export const isMosquitto = (s: ComposeService) => (s.image ?? '').startsWith('eclipse-mosquitto');
export const isPostgres = (s: ComposeService) => (s.image ?? '').startsWith('postgres');
export const isNginx = (s: ComposeService) => (s.image ?? '').startsWith('nginx');

export const dependsOn = (s: ComposeService): string[] =>
  s.depends_on === undefined ? [] : Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on);
