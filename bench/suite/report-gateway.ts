/**
 * The report's sections of the scenarios that start and measure the gateway themselves (5's Azure
 * storm, 6 REST writes, 7 Azure Web PubSub, 8 two nodes), as report.ts prints them.
 */
import { MANY_CHANNELS, type RestResult } from './rest-writes.js';
import { AZURE_ROUTE_LABELS, keptUp, type AzureResult, type AzureRow } from './azure.js';
import type { ClusterResult, ClusterSetup } from './cluster.js';
import type { AzureStormRun } from './azure-storm.js';
import { latencyCells, loadCells, n, pad, padEnd } from './report-text.js';
import type { RunNumbers } from './scenarios.js';

const AZURE_HEADER = [
  padEnd('route', 24),
  pad('rate', 6),
  pad('p50', 7),
  pad('p90', 7),
  pad('p99', 7),
  pad('p99.9', 7),
  pad('max', 7),
  pad('deliv/s', 10),
  pad('lost', 7),
  pad('drop', 6),
  pad('srv%', 6),
  pad('µs/d', 6),
  pad('RSS MB', 6),
  pad('cli%', 6),
  pad('bytes', 6),
  pad('÷ uWS', 6),
  pad('µs/d×', 6),
].join(' ');

/** 7. Azure Web PubSub: each row with its ratio to bare uWS's broadcast at the same rate. */
export function formatAzure(a: AzureResult | undefined, errors: readonly string[]): string[] {
  const lines: string[] = [];
  if (a) {
    lines.push(`7. Azure Web PubSub: ${n(a.clients)} reliable clients (json.reliable.webpubsub.azure.v1) in one group, a ${a.payloadBytes}-byte JSON payload;`);
    lines.push(
      `   sequenceAck every ${a.ackEvery} messages or ${n(a.ackIntervalMs)} ms. Baselines at the same load: the gateway's telemetry broadcast, bare uWS's broadcast.`,
    );
    lines.push('   drop = what the server counted as dropped (Azure: unacknowledged messages of ended sessions; telemetry: conflations); bytes = frame size;');
    lines.push("   ÷ uWS = deliveries/s ÷ bare uWS's at the same rate; µs/d× = server CPU per delivery ÷ bare uWS's;");
    lines.push(
      '   "kept up" = nothing lost, no session ended, ≥ 90 % of the offered deliveries/s (a route is not run past the first rate it did not keep up with)',
      AZURE_HEADER,
    );
    const uws = (rate: number) => a.rows.find((row) => row.route === 'uws-bare' && row.run.rate === rate)?.run;
    const row = (x: AzureRow): string => {
      const r = x.run;
      const base = uws(r.rate);
      const ratio = base && x.route !== 'uws-bare' && base.deliveriesPerS > 0 ? (r.deliveriesPerS / base.deliveriesPerS).toFixed(2) : '';
      const cost =
        base && x.route !== 'uws-bare' && base.serverUsPerDelivery && r.serverUsPerDelivery !== null
          ? (r.serverUsPerDelivery / base.serverUsPerDelivery).toFixed(2)
          : '';
      return [
        padEnd(AZURE_ROUTE_LABELS[x.route], 24),
        pad(n(r.rate), 6),
        ...latencyCells(r, true),
        ...loadCells(r),
        pad(n(r.frameBytes), 6),
        pad(ratio, 6),
        pad(cost, 6),
      ].join(' ');
    };
    for (const rate of a.rates) for (const x of a.rows.filter((y) => y.run.rate === rate)) lines.push(row(x));
    const stream = (rate: number) => a.rows.find((row) => row.route === 'gateway-stream' && row.run.rate === rate)?.run;
    for (const route of ['azure-bus', 'azure-rest'] as const) {
      const steps = a.rows.filter((x) => x.route === route).map((x) => x.run);
      if (steps.length === 0) continue;
      const kept = steps.filter((r) => keptUp(r, a.clients)).at(-1);
      const top = steps.reduce((x, y) => (y.deliveriesPerS > x.deliveriesPerS ? y : x));
      const vs = (r: RunNumbers) => {
        const b = uws(r.rate);
        const t = stream(r.rate);
        return (
          `p50 ${n(r.latencyMs.p50, 2)} / p99 ${n(r.latencyMs.p99, 2)} ms (bare uWS ${n(b?.latencyMs.p99, 2)}, gateway telemetry ${n(t?.latencyMs.p99, 2)}), ` +
          `${n(r.serverUsPerDelivery, 1)} µs server CPU per delivery (bare uWS ${n(b?.serverUsPerDelivery, 1)}, telemetry ${n(t?.serverUsPerDelivery, 1)})`
        );
      };
      lines.push(
        `  → ${AZURE_ROUTE_LABELS[route]}: ${kept ? `kept up to ${n(kept.rate)} msg/s = ${n(kept.deliveriesPerS)} deliveries/s: ${vs(kept)}` : `kept up at no rate (from ${n(steps[0].rate)} msg/s)`}`,
      );
      const ratio = (r: RunNumbers) => {
        const b = uws(r.rate);
        return `${b ? (r.deliveriesPerS / b.deliveriesPerS).toFixed(2) : '—'}× bare uWS (${n(b?.deliveriesPerS)}/s there)`;
      };
      const failed = steps.find((r) => !keptUp(r, a.clients));
      if (top !== kept && top !== failed)
        lines.push(`    most deliveries/s of any step: ${n(top.deliveriesPerS)} at ${n(top.rate)} msg/s = ${ratio(top)}, ${n(top.lost)} lost`);
      if (failed) {
        lines.push(
          `    did not keep up at ${n(failed.rate)} msg/s: ${n(failed.deliveriesPerS)} deliveries/s = ${ratio(failed)}, p99 ${n(failed.latencyMs.p99, 2)} ms, ` +
            `${n(failed.lost)} lost, ${n(failed.closedByServer)} connections closed by the server`,
        );
      }
    }
  } else {
    lines.push('7. Azure Web PubSub');
  }
  for (const e of [...(a?.errors ?? []), ...errors]) lines.push(`  error: ${e}`);
  return lines;
}

const REST_HEADER = [
  padEnd('backend', 24),
  pad('chans', 5),
  pad('writers', 7),
  pad('writes/s', 9),
  pad('http p50', 8),
  pad('p99', 7),
  pad('→sub p50', 8),
  pad('p99', 7),
  pad('p99.9', 7),
  pad('lost', 6),
  pad('failed', 6),
  pad('gw CPU %', 10),
  pad('alone/s', 8),
  pad('alone p99', 9),
  pad('INSERT/s', 8),
  pad('healthz/s', 9),
  pad('÷ alone', 7),
].join(' ');

/** 6. REST writes: one row per backend, channel count and concurrency, with its ceilings. */
export function formatRest(rest: RestResult | undefined, errors: readonly string[]): string[] {
  const lines = [
    `6. REST writes: concurrent POST /api/v1/test-sensors/ (${MANY_CHANNELS} channels: ${MANY_CHANNELS} collections of its shape, round robin) while WebSocket clients watch the channel(s)`,
    '   sqlite = one node; postgres = two nodes on one database and the broker, writes POSTed to A, subscribers on B (every event crosses the bus);',
    "   http = the write's round trip; →sub = POST sent → entity_event received, every subscriber, same clock; gw CPU % = each node's, % of one core;",
    "   alone = the same write without the gateway, same concurrency (SQLite: the transaction; PostgreSQL: the driver's create statement through pg);",
    "   INSERT = a plain one-row INSERT through pg (PostgreSQL's ceiling); healthz = GET /healthz on the node written to; ÷ alone = writes/s ÷ alone/s",
  ];
  if (rest?.postgres) {
    const s = rest.postgres.settings;
    lines.push(
      `   PostgreSQL ${rest.postgres.version}: fsync ${s.fsync}, synchronous_commit ${s.synchronous_commit}, full_page_writes ${s.full_page_writes}, wal_sync_method ${s.wal_sync_method}, shared_buffers ${s.shared_buffers}`,
    );
  }
  lines.push(REST_HEADER);
  for (const w of rest?.runs ?? []) {
    lines.push(
      [
        padEnd(`${w.backend}${w.nodes > 1 ? ` (A → B)` : ''}${w.paced ? `, paced ${n(w.paced.rate)}/s` : ''}`, 24),
        pad(n(w.channels), 5),
        pad(n(w.concurrency), 7),
        pad(n(w.writesPerS), 9),
        pad(n(w.httpMs.p50, 2), 8),
        pad(n(w.httpMs.p99, 2), 7),
        pad(n(w.toSubscriberMs.p50, 2), 8),
        pad(n(w.toSubscriberMs.p99, 2), 7),
        pad(n(w.toSubscriberMs.p999, 2), 7),
        pad(n(w.lost), 6),
        pad(n(w.failedWrites), 6),
        pad(w.gatewayCpuPct.map((c) => n(c)).join('+'), 10),
        pad(n(w.storeAlone.writesPerS), 8),
        pad(n(w.storeAlone.ms.p99, 2), 9),
        pad(w.plainInsert ? n(w.plainInsert.writesPerS) : '—', 8),
        pad(n(w.healthzPerS), 9),
        pad((w.writesPerS / w.storeAlone.writesPerS).toFixed(2), 7),
      ].join(' '),
    );
    if (w.paced && w.paced.lateSends > 0) lines.push(`   (paced: ${n(w.paced.lateSends)} sends more than 2 ms behind the schedule)`);
    for (const e of w.errors) lines.push(`  error: ${e}`);
  }
  for (const e of errors) lines.push(`  error: ${e}`);
  return lines;
}

export function azureStormTable(runs: readonly AzureStormRun[], label: (s: AzureStormRun) => string): string[] {
  const lines = [
    `  ${padEnd('', 14)} ${pad('connects', 9)} ${pad('failed', 7)} ${pad('connects/s', 11)} ${pad('p50 ms', 8)} ${pad('p99 ms', 8)} ${pad('ingest CPU', 11)} ${pad('process CPU', 12)} ${pad('converged', 10)} ${pad('load', 5)}`,
  ];
  for (const s of runs) {
    lines.push(
      `  ${padEnd(label(s), 14)} ${pad(n(s.connects), 9)} ${pad(n(s.failed), 7)} ${pad(n(s.connectsPerS), 11)} ${pad(n(s.connectP50Ms, 1), 8)} ${pad(n(s.connectP99Ms, 1), 8)} ` +
        `${pad(`${n(s.ingestCpuMs)} ms`, 11)} ${pad(`${n(s.processCpuMs)} ms`, 12)} ${pad(s.convergedMs === undefined ? '' : s.convergedMs < 0 ? 'no' : `${n(s.convergedMs)} ms`, 10)} ${pad(n(s.loadAverage, 1), 5)}` +
        (s.perNode.length > 1 ? `  (per node: ${s.perNode.map((x) => n(x)).join(' + ')})` : '') +
        (s.errors.length ? `  (${s.errors[0]})` : ''),
    );
  }
  return lines;
}

export function azureStormRatios(a: readonly AzureStormRun[], b: readonly AzureStormRun[]): string {
  const mean = (runs: readonly AzureStormRun[], f: (s: AzureStormRun) => number) => runs.reduce((sum, s) => sum + f(s), 0) / runs.length;
  const r = (f: (s: AzureStormRun) => number) => {
    const x = mean(a, f);
    const y = mean(b, f);
    return Number.isFinite(x) && Number.isFinite(y) && y > 0 ? (x / y).toFixed(2) : '—';
  };
  return `connects/s ${r((s) => s.connectsPerS)}×, p50 ${r((s) => s.connectP50Ms)}×, p99 ${r((s) => s.connectP99Ms)}×, ingest CPU ${r((s) => s.ingestCpuMs)}×, process CPU ${r((s) => s.processCpuMs)}×`;
}

const CLUSTER_LABELS: Readonly<Record<ClusterSetup, string>> = {
  'uws-bare': 'bare uWS (ceiling)',
  'one-node': 'gateway, one node',
  'two-nodes': 'gateway, two nodes',
};

const CLUSTER_HEADER = [
  padEnd('setup', 24),
  pad('conns', 7),
  pad('rate', 6),
  pad('p50', 7),
  pad('p90', 7),
  pad('p99', 7),
  pad('p99.9', 7),
  pad('deliv/s', 10),
  pad('lost', 7),
  pad('confl', 6),
  pad('srv%', 6),
  pad('µs/d', 6),
  pad('RSS MB', 6),
  pad('cli%', 6),
  pad('÷ 1 node', 8),
  pad('÷ uWS', 6),
  pad('µs/d×', 6),
].join(' ');

/** 8. Two nodes: each row with its ratios to one node and to bare uWS at the same connections. */
export function formatCluster(c: ClusterResult | undefined, errors: readonly string[]): string[] {
  const lines = [
    '8. Two nodes on one broker: the same clients (each watching 5 of 1,000 devices, JSON) on one gateway node, split half and half over',
    "   two nodes (same environment, one GATEWAY_CLUSTER_KEY, no database: telemetry rides the bus), and on bare uWS; all on this machine's cores.",
    "   srv% / µs/d = all nodes together; ÷ 1 node = deliveries/s ÷ one node's (p99 ÷ in the → line); ÷ uWS = deliveries/s ÷ bare uWS's; µs/d× = µs/d ÷ bare uWS's",
  ];
  if (c) {
    lines.push(CLUSTER_HEADER);
    const find = (setup: ClusterSetup, connections: number) => c.fanout.find((f) => f.setup === setup && f.run.connections === connections)?.run;
    const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? (a / b).toFixed(2) : '');
    for (const { setup, run: r, nodes } of c.fanout) {
      const one = setup === 'two-nodes' ? find('one-node', r.connections) : undefined;
      const uws = setup !== 'uws-bare' ? find('uws-bare', r.connections) : undefined;
      lines.push(
        [
          padEnd(CLUSTER_LABELS[setup], 24),
          pad(n(r.connections), 7),
          pad(n(r.rate), 6),
          ...latencyCells(r, false),
          ...loadCells(r),
          pad(ratio(r.deliveriesPerS, one?.deliveriesPerS), 8),
          pad(ratio(r.deliveriesPerS, uws?.deliveriesPerS), 6),
          pad(ratio(r.serverUsPerDelivery, uws?.serverUsPerDelivery), 6),
        ].join(' '),
      );
      if (nodes && nodes.length > 1)
        lines.push(`    per node: ${nodes.map((x, i) => `${'AB'[i] ?? i} ${n(x.connections)} connections, ${n(x.deliveries)} deliveries`).join('; ')}`);
      for (const e of r.errors) lines.push(`  error: ${e}`);
    }
    for (const connections of [...new Set(c.fanout.map((f) => f.run.connections))]) {
      const two = find('two-nodes', connections);
      const one = find('one-node', connections);
      const uws = find('uws-bare', connections);
      if (!two || !one) continue;
      lines.push(
        `  → ${n(connections)} connections, two nodes ÷ one node: deliveries/s ${ratio(two.deliveriesPerS, one.deliveriesPerS)}×, p50 ${ratio(two.latencyMs.p50, one.latencyMs.p50)}×, ` +
          `p99 ${ratio(two.latencyMs.p99, one.latencyMs.p99)}×, CPU per delivery ${ratio(two.serverUsPerDelivery, one.serverUsPerDelivery)}×` +
          (uws ? `; p99 ÷ bare uWS: one node ${ratio(one.latencyMs.p99, uws.latencyMs.p99)}×, two nodes ${ratio(two.latencyMs.p99, uws.latencyMs.p99)}×` : ''),
      );
    }
    if (c.storm.length) {
      lines.push('   Storm: authenticated connects (HS256, checked inline) to /ws/connect during a fan-out, both split half and half over the nodes');
      lines.push(
        `  ${padEnd('nodes', 14)} ${pad('connects', 9)} ${pad('connects/s', 11)} ${pad('÷ 1 node', 9)} ${pad('stream p50', 11)} ${pad('p99', 8)} ${pad('p99.9', 8)} ${pad('lost', 6)}`,
      );
      const single = c.storm.find((s) => s.nodes === 1);
      for (const s of c.storm) {
        lines.push(
          `  ${padEnd(s.nodes === 1 ? 'one node' : 'two nodes', 14)} ${pad(n(s.connects), 9)} ${pad(n(s.connectsPerS), 11)} ${pad(s.nodes > 1 ? ratio(s.connectsPerS, single?.connectsPerS) : '', 9)} ` +
            `${pad(n(s.streamLatencyMs.p50, 2), 11)} ${pad(n(s.streamLatencyMs.p99, 2), 8)} ${pad(n(s.streamLatencyMs.p999, 2), 8)} ${pad(n(s.streamLost), 6)}` +
            (s.perNode.length > 1 ? `  (accepted: ${s.perNode.map((x) => n(x.connections)).join(' + ')})` : '') +
            (s.errors.length ? `  (${s.errors[0]})` : ''),
        );
      }
    }
  }
  if (c?.azureStorm?.length) {
    lines.push('   Azure connect storm (json.webpubsub.azure.v1, presence on): two nodes (half the clients on each) vs one node');
    lines.push(...azureStormTable(c.azureStorm, (s) => (s.nodes === 1 ? 'one node' : 'two nodes')));
    const two = c.azureStorm.filter((s) => s.nodes > 1);
    const one = c.azureStorm.filter((s) => s.nodes === 1);
    if (two.length && one.length) lines.push(`  → two nodes ÷ one node (mean of the runs): ${azureStormRatios(two, one)}`);
  }
  for (const e of errors) lines.push(`  error: ${e}`);
  return lines;
}
