/**
 * The outbox relay and the channel pipeline over a fake bus (real SQLite): which rows go to the
 * dead letters, and which never do. The bus delivers asynchronously, as a broker does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { ChannelPipeline } from '../../src/features/channels/ingest/channel-pipeline.js';
import { OutboxRelay } from '../../src/features/channels/ingest/outbox-relay.js';
import { SharedStats } from '../../src/metrics/shared-stats.js';
import { openDatabase } from '../../src/store/database.js';
import { OUTBOX_MAX_ATTEMPTS } from '../../src/features/channels/store/dead-letters.js';
import { EventLog } from '../../src/features/channels/store/event-log.js';
import type { ChannelEventRecord } from '../../src/features/channels/messages.js';
import type { IngestToEdge } from '../../src/threads/messages.js';

const NODE = 'abc123';
const TOPIC = 'gateway/channels';

function node(drop: (payload: string) => boolean, retryMs = 2000) {
  const dir = mkdtempSync(join(tmpdir(), 'dead-letters-'));
  const store = openDatabase(dir, 'store');
  const history = openDatabase(dir, 'history');
  const log = new EventLog(history, store);
  const shared = SharedStats.create(1);
  const stats = shared.ingestWriter();
  const logger = pino({ level: 'silent' });
  const delivered: ChannelEventRecord[] = [];
  let published = 0;
  let pipeline: ChannelPipeline | undefined;
  const relay = new OutboxRelay(
    log,
    NODE,
    TOPIC,
    {
      connected: true,
      publish: (topic, payload) => {
        published++;
        if (drop(payload)) return;
        setImmediate(() => pipeline!.handle(topic.slice(TOPIC.length + 1), Buffer.from(payload)));
      },
    },
    retryMs,
    stats,
    logger,
  );
  pipeline = new ChannelPipeline(
    loadConfig({}).events.channels,
    log,
    'epoch1',
    NODE,
    relay,
    64,
    (m: IngestToEdge) => {
      if (m.t === 'channel-events') delivered.push(...m.events);
    },
    stats,
    logger,
  );
  onTestFinished(() => {
    relay.stop();
    pipeline!.stop();
    store.close();
    history.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const write = (type: string) =>
    store
      .prepare('INSERT INTO outbox (channel, payload, created_at) VALUES (?, ?, ?)')
      .run('general', JSON.stringify({ type: 'notification', notification_type: type, data: {} }), Date.now());
  const deadLetters = () => store.prepare('SELECT id, reason FROM dead_letters ORDER BY id').all() as { id: number; reason: string }[];
  return { relay, pipeline, delivered, write, deadLetters, shared, published: () => published };
}

async function until(what: string, check: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('outbox dead letters', () => {
  it(`a row the bus drops while later rows come back is dead-lettered when later rows overtook it ${OUTBOX_MAX_ATTEMPTS} times; the rest arrive in order`, async () => {
    const n = node((payload) => payload.includes('"notification_type":"lost"'), 100);
    for (const type of ['a', 'lost', 'b', 'c']) n.write(type);
    n.relay.pump();
    await until('the rows after the lost one', () => n.delivered.length === 3);
    expect(n.delivered.map((e) => [e.offset, JSON.parse(e.frames[0] as string).notification_type])).toEqual([
      [1, 'a'],
      [2, 'b'],
      [3, 'c'],
    ]);
    expect(n.deadLetters()).toEqual([{ id: 2, reason: expect.stringMatching(/overtaken 5 times: later events came back/) }]);
    expect(n.shared.getIngest('outbox_dead_letters')).toBe(1);
    expect(n.shared.getIngest('outbox_dead_lettered_total')).toBe(1);
    expect(n.relay.confirmed).toBe(4);
  });

  it('a row refused when it comes back is dead-lettered at once, in its place', async () => {
    const n = node(() => false);
    n.write('a');
    n.write('not a name!'); // notification_type must be a name: refused by the pipeline
    n.write('b');
    n.relay.pump();
    await until('both good rows', () => n.delivered.length === 2);
    expect(n.deadLetters()).toEqual([{ id: 2, reason: expect.stringMatching(/notification_type/) }]);
    expect(n.shared.getIngest('outbox_retries_total')).toBe(0); // no rewind: passed over in order
  });

  it('timeouts alone never dead-letter: a bus that delivers nothing delays rows, it does not lose them', async () => {
    const n = node(() => true, 50);
    n.write('a');
    n.write('b');
    n.relay.pump();
    await until('several publications of each row', () => n.published() >= 2 * (OUTBOX_MAX_ATTEMPTS + 3), 10_000);
    expect(n.deadLetters()).toEqual([]);
    expect(n.relay.confirmed).toBe(0);
  });
});
