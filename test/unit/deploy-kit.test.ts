/**
 * Issue 17 item 5, the kit, checked without a container engine (none runs here): every manifest of
 * deploy/kubernetes parsed with `yaml` and validated against the Kubernetes schemas (kubernetes-models,
 * each kind's `validate()`), with no field the schema does not know (validate() lets unknown fields
 * through, so a typo such as `readinesProbe` is caught here from the models' type declarations), and
 * their cross-references; deploy/compose/compose.yaml, its env files, mosquitto and nginx configs
 * checked structurally. test/cluster/kit.test.ts runs the same compose topology as processes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ENV_TABLE } from '../../src/config/env-table.js';
import { COMPOSE_DIR, isGateway, isMosquitto, isNginx, isPostgres, mountedFile, readCompose, readEnvFile, serviceEnv } from '../../scripts/compose-file.js';
import { REPO_ROOT } from '../helpers/gateway-process.js';

const K8S_DIR = join(REPO_ROOT, 'deploy', 'kubernetes');
const KNOWN_ENV = new Set(ENV_TABLE.map((v) => v.name));
const require = createRequire(import.meta.url);

/** The models by apiVersion and kind, each with its type declaration (for the unknown-field walk). */
const MODELS: Record<string, { model: new (data: any) => { validate(): void }; dts: string }> = {
  'apps/v1 Deployment': { model: Deployment, dts: 'kubernetes-models/apps/v1/Deployment.d.ts' },
  'v1 Service': { model: Service, dts: 'kubernetes-models/v1/Service.d.ts' },
  'v1 ConfigMap': { model: ConfigMap, dts: 'kubernetes-models/v1/ConfigMap.d.ts' },
  'v1 Secret': { model: Secret, dts: 'kubernetes-models/v1/Secret.d.ts' },
  'policy/v1 PodDisruptionBudget': { model: PodDisruptionBudget, dts: 'kubernetes-models/policy/v1/PodDisruptionBudget.d.ts' },
};

const NODE_MODULES = join(dirname(require.resolve('kubernetes-models/package.json')), '..');

interface Shape {
  /** Property → the .d.ts of its interface type (undefined: a scalar, a map or a union: not walked). */
  readonly props: Map<string, string | undefined>;
}
const shapes = new Map<string, Shape>();

/** The first interface of a kubernetes-models .d.ts: its property names and the files of their object types. */
function shapeOf(file: string): Shape {
  const cached = shapes.get(file);
  if (cached) return cached;
  const text = readFileSync(file, 'utf8');
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
    const spec = m[2].replace(/\.js$/, '');
    imports.set(m[1], spec.startsWith('.') ? join(dirname(file), `${spec}.d.ts`) : join(NODE_MODULES, `${spec}.d.ts`));
  }
  const start = text.search(/^export interface \w+ (?:extends \w+ )?\{$/m);
  if (start < 0) throw new Error(`${file}: no interface`);
  const body = text.slice(start, text.indexOf('\n}', start));
  const props = new Map<string, string | undefined>();
  if (/^export interface \w+ extends TypeMeta /m.test(body)) for (const k of ['apiVersion', 'kind']) props.set(k, undefined);
  // One property a line at four spaces; a type that spans lines (a map) starts with `{` and is not walked.
  for (const m of body.matchAll(/^ {4}"(\w+)"\??: (.+)$/gm)) {
    const type = /^(?:Array<)?(IIoK8s\w+)>?;$/.exec(m[2]);
    props.set(m[1], type ? imports.get(type[1]) : undefined);
  }
  const shape = { props };
  shapes.set(file, shape);
  return shape;
}

/** Every key of `value` the schema knows, recursively: returns the paths of those it does not. */
function unknownFields(value: unknown, file: string, path: string): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => unknownFields(v, file, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  const { props } = shapeOf(file);
  const found: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (!props.has(key)) found.push(`${path}.${key}`);
    else {
      const inner = props.get(key);
      if (inner) found.push(...unknownFields(v, inner, `${path}.${key}`));
    }
  }
  return found;
}

interface Manifest {
  readonly file: string;
  readonly doc: any;
}

function manifests(): Manifest[] {
  const kustomization = parseYaml(readFileSync(join(K8S_DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  return kustomization.resources.flatMap((file) =>
    readFileSync(join(K8S_DIR, file), 'utf8')
      .split(/^---$/m)
      .filter((d) => d.trim() !== '')
      .map((d) => ({ file, doc: parseYaml(d) })),
  );
}

const byKind = (all: Manifest[], kind: string) => all.filter((m) => m.doc.kind === kind).map((m) => m.doc);

/** The paths the gateway's operator routes answer with GET (src/features/operations/edge/operator-routes.ts). */
const operatorGets = () =>
  [...readFileSync(join(REPO_ROOT, 'src/features/operations/edge/operator-routes.ts'), 'utf8').matchAll(/app\.get\('([^']+)'/g)].map((m) => m[1]);

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('deploy/kubernetes', () => {
  const all = manifests();
  const [deployment] = byKind(all, 'Deployment');
  const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
  const container = deployment.spec.template.spec.containers[0];

  it('kustomization.yaml lists every manifest in the folder, and each is one of the expected kinds', () => {
    const files = readdirSync(K8S_DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect(new Set(all.map((m) => m.file))).toEqual(new Set(files));
    expect(all.map((m) => m.doc.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Secret', 'Service']);
  });

  it('every manifest validates against the Kubernetes schemas and has no field they do not know', () => {
    for (const { file, doc } of all) {
      const entry = MODELS[`${doc.apiVersion} ${doc.kind}`];
      expect(entry, `${file}: ${doc.apiVersion} ${doc.kind}`).toBeDefined();
      expect(() => new entry.model(doc).validate(), file).not.toThrow();
      expect(unknownFields(doc, join(NODE_MODULES, entry.dts), doc.kind), file).toEqual([]);
    }
    // The walk does find a misspelt field, and validate() finds a wrong type.
    const typo = structuredClone(deployment);
    typo.spec.template.spec.containers[0].readinesProbe = container.readinessProbe;
    expect(unknownFields(typo, join(NODE_MODULES, MODELS['apps/v1 Deployment'].dts), 'Deployment')).toEqual([
      'Deployment.spec.template.spec.containers[0].readinesProbe',
    ]);
    const wrong = structuredClone(deployment);
    wrong.spec.replicas = 'three';
    expect(() => new Deployment(wrong).validate()).toThrow(/replicas/);
  });

  it('the selectors of the Deployment, the Service and the PDB match the pod labels; the Service targets the named port', () => {
    const [service] = byKind(all, 'Service');
    const [pdb] = byKind(all, 'PodDisruptionBudget');
    expect(matches(deployment.spec.selector.matchLabels, podLabels)).toBe(true);
    expect(matches(service.spec.selector, podLabels)).toBe(true);
    expect(matches(pdb.spec.selector.matchLabels, podLabels)).toBe(true);
    expect(service.spec.sessionAffinity).toBe('None');
    const portNames = container.ports.map((p: any) => p.name);
    for (const p of service.spec.ports) expect(portNames).toContain(p.targetPort);
    expect(deployment.spec.replicas).toBe(3);
    expect(pdb.spec.maxUnavailable).toBe(1);
  });

  it('every ConfigMap and Secret referenced exists; every variable they hold is one the gateway reads', () => {
    const configMaps = new Map(byKind(all, 'ConfigMap').map((c) => [c.metadata.name, c.data as Record<string, string>]));
    const secrets = new Map(byKind(all, 'Secret').map((s) => [s.metadata.name, { ...s.data, ...s.stringData } as Record<string, string>]));
    const names: string[] = [];
    for (const from of container.envFrom) {
      if (from.configMapRef) {
        expect(configMaps.has(from.configMapRef.name), from.configMapRef.name).toBe(true);
        names.push(...Object.keys(configMaps.get(from.configMapRef.name)!));
      }
      if (from.secretRef) {
        expect(secrets.has(from.secretRef.name), from.secretRef.name).toBe(true);
        names.push(...Object.keys(secrets.get(from.secretRef.name)!));
      }
    }
    for (const e of container.env ?? []) {
      names.push(e.name);
      const ref = e.valueFrom?.configMapKeyRef ?? e.valueFrom?.secretKeyRef;
      if (ref) expect((configMaps.get(ref.name) ?? secrets.get(ref.name))?.[ref.key], `${ref.name}/${ref.key}`).toBeDefined();
    }
    expect(names.filter((n) => !KNOWN_ENV.has(n))).toEqual([]);
    // The keys a cluster shares are in the Secret, not the ConfigMap.
    const secretNames = new Set([...secrets.values()].flatMap((s) => Object.keys(s)));
    for (const key of [
      'GATEWAY_JWT_SECRET',
      'GATEWAY_CLUSTER_KEY',
      'GATEWAY_SHARE_LOCAL_KEY',
      'GATEWAY_AZURE_ACCESS_KEY',
      'GATEWAY_DATABASE_URL',
      'GATEWAY_OPERATOR_TOKEN',
    ]) {
      expect(secretNames.has(key), key).toBe(true);
    }
    expect([...configMaps.values()].flatMap((c) => Object.keys(c)).filter((n) => secretNames.has(n))).toEqual([]);
  });

  it('the probes ask routes the gateway serves, on the container port; the grace period outlasts preStop and the shutdown deadline', () => {
    const gets = operatorGets();
    expect(gets).toEqual(expect.arrayContaining(['/healthz', '/readyz']));
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
      expect(gets).toContain(probe.httpGet.path);
      expect(container.ports.map((p: any) => p.name)).toContain(probe.httpGet.port);
    }
    const [config] = byKind(all, 'ConfigMap');
    const shutdownS = Number(config.data.GATEWAY_SHUTDOWN_TIMEOUT_MS) / 1000;
    const preStop = container.lifecycle.preStop.exec.command as string[];
    expect(preStop[0]).toBe('sleep');
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(Number(preStop[1]) + shutdownS);
    // The port the container declares is the one the gateway listens on.
    expect(container.ports[0].containerPort).toBe(Number(config.data.PORT));
  });

  it('every volume mount has its volume, GATEWAY_DATA_DIR is mounted, and the container has requests and a memory limit', () => {
    const volumes = new Set(deployment.spec.template.spec.volumes.map((v: any) => v.name));
    for (const m of container.volumeMounts) expect(volumes.has(m.name), m.name).toBe(true);
    const [config] = byKind(all, 'ConfigMap');
    expect(container.volumeMounts.map((m: any) => m.mountPath)).toContain(config.data.GATEWAY_DATA_DIR);
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources.limits.memory).toBeDefined();
  });
});

/** nginx.conf as a tree of directives: enough to read it as nginx does (words, `;`, blocks, `#` comments). */
interface Directive {
  readonly name: string;
  readonly args: string[];
  readonly block?: Directive[];
}

function parseNginx(text: string): Directive[] {
  const tokens = text
    .replace(/#[^\n]*/g, '')
    .split(/(\s+|[{};])/)
    .filter((t) => t.trim() !== '');
  let i = 0;
  const parseBlock = (top: boolean): Directive[] => {
    const out: Directive[] = [];
    while (i < tokens.length) {
      if (tokens[i] === '}') {
        if (top) throw new Error('nginx.conf: unbalanced }');
        i++;
        return out;
      }
      const words: string[] = [];
      while (i < tokens.length && !['{', ';', '}'].includes(tokens[i])) words.push(tokens[i++]);
      if (tokens[i] === ';') {
        i++;
        out.push({ name: words[0], args: words.slice(1) });
      } else if (tokens[i] === '{') {
        i++;
        out.push({ name: words[0], args: words.slice(1), block: parseBlock(false) });
      } else throw new Error(`nginx.conf: "${words.join(' ')}" is not ended by ; or {`);
    }
    if (!top) throw new Error('nginx.conf: a block is not closed');
    return out;
  };
  return parseBlock(true);
}

const find = (ds: readonly Directive[], name: string) => ds.filter((d) => d.name === name);

describe('deploy/compose', () => {
  const compose = readCompose();
  const services = compose.services as Record<string, any>;
  const names = Object.keys(services);
  const gateways = names.filter((n) => isGateway(services[n]));
  const brokers = names.filter((n) => isMosquitto(services[n]));
  const [postgres] = names.filter((n) => isPostgres(services[n]));
  const [nginx] = names.filter((n) => isNginx(services[n]));

  it('has three gateway nodes from the Dockerfile, PostgreSQL 15, two Mosquittos and nginx', () => {
    expect(gateways).toEqual(['gateway-1', 'gateway-2', 'gateway-3']);
    for (const g of gateways) expect(services[g].build.context).toBe('../..');
    expect(readFileSync(join(COMPOSE_DIR, services[gateways[0]].build.context, 'Dockerfile'), 'utf8')).toMatch(/CMD \["node", "dist\/src\/main.js"\]/);
    expect(services[postgres].image).toMatch(/^postgres:15/);
    expect(brokers).toHaveLength(2);
    expect(services[nginx].image).toMatch(/^nginx:/);
  });

  it('every gateway has the same environment but its broker, and every variable is one the gateway reads', () => {
    const envs = gateways.map((g) => serviceEnv(services[g]));
    for (const env of envs) expect(Object.keys(env).filter((k) => !KNOWN_ENV.has(k))).toEqual([]);
    const withoutBroker = envs.map(({ MQTT_URL: _, ...rest }) => rest);
    for (const env of withoutBroker) expect(env).toEqual(withoutBroker[0]);
    for (const key of [
      'GATEWAY_JWT_SECRET',
      'GATEWAY_CLUSTER_KEY',
      'GATEWAY_SHARE_LOCAL_KEY',
      'GATEWAY_AZURE_ACCESS_KEY',
      'GATEWAY_DATABASE_URL',
      'GATEWAY_TRUSTED_PROXIES',
    ]) {
      expect(withoutBroker[0][key], key).toBeDefined();
    }
    // Each on a broker of the compose file; both brokers used.
    const used = envs.map((e) => new URL(e.MQTT_URL).hostname);
    for (const host of used) expect(brokers).toContain(host);
    expect(new Set(used).size).toBe(2);
    // The database URL names the compose PostgreSQL with postgres.env's role and database.
    const db = new URL(envs[0].GATEWAY_DATABASE_URL);
    const pgEnv = serviceEnv(services[postgres]);
    expect([db.hostname, db.username, db.pathname.slice(1)]).toEqual([postgres, pgEnv.POSTGRES_USER, pgEnv.POSTGRES_DB]);
    expect(decodeURIComponent(db.password)).toBe(pgEnv.POSTGRES_PASSWORD);
    // The gateways trust exactly nginx's address.
    expect(envs[0].GATEWAY_TRUSTED_PROXIES).toBe(services[nginx].networks.cluster.ipv4_address);
  });

  it('each gateway has its own volume at GATEWAY_DATA_DIR (the Dockerfile sets /app/data)', () => {
    expect(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8')).toMatch(/^ENV GATEWAY_DATA_DIR=\/app\/data$/m);
    const volumes = gateways.map((g) => (services[g].volumes as string[]).find((v) => v.split(':')[1] === '/app/data')?.split(':')[0]);
    expect(new Set(volumes).size).toBe(3);
    for (const v of volumes) expect(Object.keys(compose as any as { volumes: object }).length && (compose as any).volumes).toHaveProperty(v!);
  });

  it('healthchecks on /readyz and PostgreSQL; depends_on waits for them; shutdown outlasts the gateway deadline', () => {
    for (const g of gateways) {
      const s = services[g];
      expect(s.healthcheck.test.join(' ')).toContain('/readyz');
      expect(s.depends_on[postgres].condition).toBe('service_healthy');
      for (const b of brokers) expect(s.depends_on[b]).toBeDefined();
      const stopS = Number(/^(\d+)s$/.exec(s.stop_grace_period)![1]);
      expect(stopS * 1000).toBeGreaterThan(Number(serviceEnv(s).GATEWAY_SHUTDOWN_TIMEOUT_MS ?? 10_000));
    }
    expect(operatorGets()).toContain('/readyz');
    expect(services[postgres].healthcheck.test.join(' ')).toContain('pg_isready');
    for (const g of gateways) expect(services[nginx].depends_on[g].condition).toBe('service_healthy');
  });

  it('the Mosquittos: logins and the ACL; B bridges every topic both ways to A at QoS 1 without a clean session', () => {
    const acl = readFileSync(join(COMPOSE_DIR, 'mosquitto', 'acl'), 'utf8');
    const aclUsers = [...acl.matchAll(/^user (\S+)$/gm)].map((m) => m[1]);
    const gatewayEnv = serviceEnv(services[gateways[0]]);
    expect(aclUsers).toContain(gatewayEnv.GATEWAY_MQTT_USERNAME);
    const bridges: string[] = [];
    for (const b of brokers) {
      const conf = readFileSync(mountedFile(services[b], '/mosquitto/config/mosquitto.conf'), 'utf8');
      const lines = new Set(conf.split('\n').map((l) => l.trim()));
      expect(lines).toContain('listener 1883');
      expect(lines).toContain('allow_anonymous false');
      // The files it names are the ones compose mounts.
      const mounted = (services[b].volumes as string[]).map((v) => v.split(':')[1]);
      for (const m of conf.matchAll(/^(?:password_file|acl_file) (\S+)$/gm)) expect(mounted).toContain(m[1]);
      if (/^connection /m.test(conf)) {
        bridges.push(b);
        const address = /^address (\S+)$/m.exec(conf)![1];
        expect(brokers.filter((x) => x !== b).map((x) => `${x}:1883`)).toContain(address);
        expect(lines).toContain('topic # both 1');
        expect(lines).toContain('cleansession false');
        const remoteUser = /^remote_username (\S+)$/m.exec(conf)![1];
        expect(acl).toMatch(new RegExp(`^user ${remoteUser}\\ntopic readwrite #$`, 'm'));
      }
    }
    expect(bridges).toHaveLength(1);
  });

  it('nginx.conf parses; its upstream lists the three nodes, round robin without stickiness; WebSocket headers and long timeouts', () => {
    const conf = parseNginx(readFileSync(mountedFile(services[nginx], '/etc/nginx/nginx.conf'), 'utf8'));
    const [http] = find(conf, 'http');
    const upstreams = find(http.block!, 'upstream');
    expect(upstreams).toHaveLength(1);
    const upstream = upstreams[0].block!;
    expect(find(upstream, 'server').map((s) => s.args[0])).toEqual(gateways.map((g) => `${g}:${serviceEnv(services[g]).PORT}`));
    for (const sticky of ['ip_hash', 'hash', 'sticky', 'least_conn', 'random']) expect(find(upstream, sticky)).toEqual([]);
    const [server] = find(http.block!, 'server');
    expect(find(server.block!, 'listen')[0].args[0]).toBe(String(services[nginx].ports[0].split(':')[1]));
    const [location] = find(server.block!, 'location');
    const d = (name: string) => find(location.block!, name).map((x) => x.args);
    expect(d('proxy_pass')).toEqual([[`http://${upstreams[0].args[0]}`]]);
    expect(d('proxy_http_version')).toEqual([['1.1']]);
    const headers = Object.fromEntries(d('proxy_set_header').map(([k, v]) => [k, v]));
    expect(headers).toMatchObject({ Upgrade: '$http_upgrade', Connection: '$connection_upgrade', 'X-Forwarded-For': '$proxy_add_x_forwarded_for' });
    const [map] = find(http.block!, 'map');
    expect(map.args).toEqual(['$http_upgrade', '$connection_upgrade']);
    // Longer than the gateway's quiet periods (keep-alive 60 s, idle timeout 120 s).
    for (const t of ['proxy_read_timeout', 'proxy_send_timeout']) expect(Number(/^(\d+)s$/.exec(d(t)[0][0])![1])).toBeGreaterThan(120);
  });

  it('the env files hold only placeholders for secrets (nothing real committed), and the same names in the Kubernetes Secret', () => {
    const secrets = readEnvFile(join(COMPOSE_DIR, 'gateway-secrets.env'));
    for (const [k, v] of Object.entries(secrets)) expect(v, k).toMatch(/CHANGE_ME/);
    const k8s = parseYaml(readFileSync(join(K8S_DIR, 'secret.yaml'), 'utf8'));
    expect(Object.keys(k8s.stringData).sort()).toEqual(Object.keys(secrets).sort());
  });
});
