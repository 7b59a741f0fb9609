/**
 * GET /metrics in Prometheus text format (prom-client). Each edge thread has its own registry whose
 * collectors read the shared stats, so any edge answering gives the same, gateway-wide numbers.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { BROKER_METRICS, EDGE_METRICS, HEALTH_METRICS, INGEST_METRICS, STORE_METRICS, type MetricSpec } from './metric-table.js';
import type { SharedStats } from './shared-stats.js';
import { findStalls, threadProgress } from '../threads/progress.js';

function register(registry: Registry, spec: MetricSpec, read: () => number): void {
  const name = `gateway_${spec.key}`;
  if (spec.kind === 'gauge') {
    new Gauge({
      name,
      help: spec.help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  } else {
    // The shared stats hold the running total; a counter cannot be set, so reset and add it.
    new Counter({
      name,
      help: spec.help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }
}

interface HealthGauges {
  readonly watchdogMs: number;
  readonly tokenPool: boolean;
}

export function createPrometheusRegistry(stats: SharedStats, health: HealthGauges): Registry {
  const registry = new Registry();
  new Gauge({
    name: 'gateway_thread_progress_age_seconds',
    help: HEALTH_METRICS[0].help,
    labelNames: ['thread'],
    registers: [registry],
    collect() {
      for (const p of threadProgress(stats, Date.now(), health.tokenPool)) this.set({ thread: p.thread }, p.ageMs / 1000);
    },
  });
  new Gauge({
    name: 'gateway_threads_stalled',
    help: HEALTH_METRICS[1].help,
    registers: [registry],
    collect() {
      this.set(findStalls(stats, Date.now(), health.watchdogMs, health.tokenPool).length);
    },
  });
  for (const spec of INGEST_METRICS) register(registry, spec, () => stats.getIngest(spec.key));
  for (const spec of EDGE_METRICS) register(registry, spec, () => stats.sumEdges(spec.key));
  for (const spec of BROKER_METRICS) register(registry, spec, () => stats.getGlobal(spec.key));
  for (const spec of STORE_METRICS) register(registry, spec, () => stats.getGlobal(spec.key));
  register(registry, { key: 'edge_threads', kind: 'gauge', help: 'Edge threads serving the port.' }, () => stats.getGlobal('edge_threads'));
  register(registry, { key: 'shutting_down', kind: 'gauge', help: '1 while the gateway is shutting down.' }, () => stats.getGlobal('shutting_down'));
  register(registry, { key: 'uptime_seconds', kind: 'gauge', help: 'Seconds since start.' }, () => (Date.now() - stats.getGlobal('started_at_ms')) / 1000);
  return registry;
}
