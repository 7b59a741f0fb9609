import { describe, expect, it } from 'vitest';
import { SharedStats } from '../../src/metrics/shared-stats.js';
import { beatIntervalMs, findStalls, threadProgress } from '../../src/threads/progress.js';
import { loadConfig } from '../../src/config/load-config.js';

const NOW = 1_000_000;
const BOUND = 10_000;

/** Every thread beat just now, the MQTT probe came back, the pools are idle. */
function healthy(edges = 2): SharedStats {
  const stats = SharedStats.create(edges);
  stats.setMark('main_beat_ms', NOW - 100);
  stats.setMark('ingest_beat_ms', NOW - 200);
  stats.setMark('ingest_probe_since_ms', NOW - 60_000);
  stats.setMark('ingest_probe_seen_ms', NOW - 300);
  for (let e = 0; e < edges; e++) stats.setEdgeBeat(e, NOW - 400);
  return stats;
}

describe('watchdog verdicts (threads/progress.ts)', () => {
  it('finds nothing while every thread shows progress', () => {
    expect(findStalls(healthy(), NOW, BOUND, true)).toEqual([]);
  });

  it('names an edge whose heartbeat stopped, with the age in the reason', () => {
    const stats = healthy();
    stats.setEdgeBeat(1, NOW - 12_000);
    expect(findStalls(stats, NOW, BOUND, false)).toEqual([{ thread: 'edge-1', ageMs: 12_000, reason: 'edge-1 thread not making progress for 12 s' }]);
  });

  it('names the MQTT client when the probe stops coming back while the ingest thread beats', () => {
    const stats = healthy();
    stats.setMark('ingest_probe_seen_ms', NOW - 10_500);
    expect(findStalls(stats, NOW, BOUND, false).map((s) => s.reason)).toEqual([
      "ingest thread's MQTT client not delivering for 11 s (the watchdog probe did not come back)",
    ]);
  });

  it("counts a new connection's probe from when probing started, and does not judge it while not subscribed", () => {
    const stats = healthy();
    stats.setMark('ingest_probe_seen_ms', NOW - 60_000); // the last probe was on the connection before
    stats.setMark('ingest_probe_since_ms', NOW - 2_000);
    expect(findStalls(stats, NOW, BOUND, false)).toEqual([]);
    stats.setMark('ingest_probe_since_ms', 0); // disconnected: readiness says `mqtt not connected`
    expect(threadProgress(stats, NOW, false).find((p) => p.thread === 'ingest-mqtt')?.ageMs).toBe(0);
  });

  it('names the ingest thread, not its client, when the whole thread stopped', () => {
    const stats = healthy();
    stats.setMark('ingest_beat_ms', NOW - 11_000);
    stats.setMark('ingest_probe_seen_ms', NOW - 11_000);
    expect(findStalls(stats, NOW, BOUND, false).map((s) => s.thread)).toEqual(['ingest']);
  });

  it('judges a pool by since when it has had work and finished none; the token pool only when it runs', () => {
    const stats = healthy();
    stats.setMark('main_token_pool_waiting_ms', NOW - 10_001);
    stats.setMark('main_store_pool_waiting_ms', NOW - 9_000);
    expect(findStalls(stats, NOW, BOUND, true).map((s) => s.reason)).toEqual(['token-check pool not making progress for 10 s']);
    expect(findStalls(stats, NOW, BOUND, false)).toEqual([]);
  });

  it('blames a stopped main thread, not the pools whose marks it writes, and nothing while shutting down', () => {
    const stats = healthy();
    stats.setMark('main_beat_ms', NOW - 20_000);
    stats.setMark('main_store_pool_waiting_ms', NOW - 20_000);
    expect(findStalls(stats, NOW, BOUND, false).map((s) => s.thread)).toEqual(['main']);
    stats.setGlobal('shutting_down', 1);
    expect(findStalls(stats, NOW, BOUND, false)).toEqual([]);
  });

  it('does not judge a thread that has not started, and beats at a fifth of the bound within 50 ms..1 s', () => {
    expect(findStalls(SharedStats.create(1), NOW, BOUND, true)).toEqual([]);
    expect([beatIntervalMs(10_000), beatIntervalMs(1500), beatIntervalMs(100)]).toEqual([1000, 300, 50]);
  });

  it('keeps the watchdog marks apart from the metric rows of 64 edges', () => {
    const stats = SharedStats.create(64);
    stats.setEdgeBeat(63, 5);
    stats.edgeWriter(0).set('connections', 7);
    expect([stats.edgeBeat(63), stats.sumEdges('connections'), stats.mark('main_beat_ms')]).toEqual([5, 7, 0]);
    expect(SharedStats.attach(stats.buffer).edges).toBe(64);
  });
});

describe('test hooks configuration', () => {
  it('honours GATEWAY_TEST_HOOKS only with ENVIRONMENT=test, and refuses unknown hooks', () => {
    expect(loadConfig({ ENVIRONMENT: 'test', GATEWAY_TEST_HOOKS: 'bus' }).health.testHooks).toEqual(['bus']);
    const prod = loadConfig({ ENVIRONMENT: 'production', GATEWAY_TEST_HOOKS: 'bus' }).health;
    expect(prod.testHooks).toEqual([]);
    expect(prod.ignoredTestHooks).toEqual(['bus']);
    expect(loadConfig({}).health).toEqual({ watchdogMs: 10_000, watchdogTopic: 'gateway/watchdog', testHooks: [], ignoredTestHooks: [] });
    expect(() => loadConfig({ ENVIRONMENT: 'test', GATEWAY_TEST_HOOKS: 'wedge' })).toThrow(/GATEWAY_TEST_HOOKS names an unknown hook/);
    expect(() => loadConfig({ GATEWAY_WATCHDOG_TOPIC: 'gateway/#' })).toThrow(/GATEWAY_WATCHDOG_TOPIC must be a topic without wildcards/);
  });
});
