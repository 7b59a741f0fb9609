/**
 * The "nothing lost" check of the cluster suite's fault tests: writers on every node (or on the
 * `writeOn` ones), subscribers on every (or the `watchOn`) node, a fault in the middle of the burst,
 * then every 2xx write delivered once, in offset order, to every subscriber, the same stream on each.
 */
import { expect } from 'vitest';
import { adminToken, connectChannel } from '../helpers/channels.js';
import { awaitKeys, events, expectConsecutive, startWriters, type Cluster, type ClusterNode, type Writers } from '../helpers/cluster.js';

export interface Burst {
  /** Writes per writing node (default 300), with `concurrency` writers each (default 4). */
  readonly perNode?: number;
  readonly concurrency?: number;
  readonly writeOn?: readonly ClusterNode[];
  readonly watchOn?: readonly ClusterNode[];
  /** Called once the subscribers have seen `faultAfter` events (default 50). */
  readonly fault: () => Promise<void> | void;
  /** Called once each writing node has had `heal` (default 100) more writes answered since the fault; given the writers (one per writing node). */
  readonly heal: (writers: readonly Writers[]) => Promise<void> | void;
  readonly faultAfter?: number;
  readonly healAfter?: number;
  /** How long the subscribers may take to get everything after the last write (default 30 s). */
  readonly deliveryMs?: number;
  /** Writes on these nodes may fail (the node is killed): each failed write may still have been committed, its reply lost. */
  readonly mayFail?: readonly ClusterNode[];
  /**
   * Replies (status and body, as in Writers.errors) a write may get on any node without failing the
   * burst (the store away: 503 GW_ERR_STORE_UNAVAILABLE); such a write may still have been committed.
   * The writers back off `backoffMs` (default 100) after one.
   */
  readonly mayRefuse?: RegExp;
  readonly backoffMs?: number;
}

/** A write refused with a `mayRefuse` reply: the node it went to and its number there (its body is body(n)). */
export interface Refused {
  readonly node: ClusterNode;
  readonly n: number;
  readonly reply: string;
}

/** Runs the burst; returns the written entities and the subscribers for further checks. */
export async function burstWithFault(cluster: Cluster, burst: Burst) {
  const token = await adminToken();
  const writeOn = burst.writeOn ?? cluster.nodes;
  const watchOn = burst.watchOn ?? cluster.nodes;
  const subscribers = await Promise.all(watchOn.map((node) => connectChannel(node, '/api/v1/ws?channel=readings')));
  const writers = writeOn.map((node) =>
    startWriters(node, '/api/v1/lecturas/', {
      count: burst.perNode ?? 300,
      concurrency: burst.concurrency ?? 4,
      token,
      body: (n) => ({ sensor_id: node.index + 1, valor: n, unidad: node.name }),
      backoffMs: burst.mayRefuse ? (burst.backoffMs ?? 100) : 0,
    }),
  );
  await subscribers[0].next(() => events(subscribers[0]).length >= (burst.faultAfter ?? 50), 20_000);
  await burst.fault();
  const atFault = writers.map((w) => w.ok.length);
  await Promise.all(writers.map((w, i) => w.until(atFault[i] + (burst.healAfter ?? 100))));
  await burst.heal(writers);
  await Promise.all(writers.map((w) => w.done));
  let unanswered = 0;
  const refused: Refused[] = [];
  for (const [i, w] of writers.entries()) {
    const errors = burst.mayRefuse ? w.errors.filter((e) => !burst.mayRefuse!.test(e)) : w.errors;
    for (const e of w.errors) if (!errors.includes(e)) refused.push({ node: writeOn[i], n: Number(/^write (\d+):/.exec(e)![1]), reply: e });
    if (burst.mayFail?.includes(writeOn[i])) unanswered += errors.length;
    else expect(errors, `writes on ${writeOn[i].name}`).toEqual([]);
  }
  unanswered += refused.length;
  const written = writers.flatMap((w) => w.ok);
  const ids = written.map((e) => e.id as number);
  expect(new Set(ids).size).toBe(ids.length);
  for (const [i, client] of subscribers.entries()) {
    await awaitKeys(client, ids, burst.deliveryMs ?? 30_000);
    const got = events(client);
    const what = `subscriber on ${watchOn[i].name}`;
    // Each 2xx write once; a write whose node died before answering (or refused) may have been committed too.
    expect(new Set(got.map((f) => f.entity_id)).size, `${what}: each event once`).toBe(got.length);
    expect(got.length, `${what}: events`).toBeGreaterThanOrEqual(ids.length);
    expect(got.length, `${what}: events beyond the 2xx writes`).toBeLessThanOrEqual(ids.length + unanswered);
    expectConsecutive(got, what);
    expect(got[0].offset, what).toBe(1);
  }
  const stream = (i: number) => events(subscribers[i]).map((f) => [f.offset, f.entity_id, f.epoch]);
  for (let i = 1; i < subscribers.length; i++) expect(stream(i), `${watchOn[i].name}'s stream is ${watchOn[0].name}'s`).toEqual(stream(0));
  return { written, subscribers, refused };
}
