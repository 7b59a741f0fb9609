/**
 * What the fault scenarios share: REST writers that record exactly which writes were acknowledged,
 * the events a client saw (offsets, entity ids), and the gateway's counters.
 */
import type { GatewayProcess } from '../helpers/gateway-process.js';
import type { Bystander } from './bystander.js';
import { parseMetrics } from './fuzz-node.js';

export const isEvent = (f: any) => typeof f?.offset === 'number' && f.type !== 'connection_established';
export const offsetsOf = (b: Bystander) => b.frames.filter(isEvent).map((f) => f.offset as number);
export const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

export async function metrics(gw: GatewayProcess): Promise<Record<string, number>> {
  return parseMetrics(await (await fetch(`${gw.http}/metrics`)).text());
}

/** Duplicates in a list, for a message that names them. */
export function duplicates<T>(values: readonly T[]): T[] {
  const seen = new Set<T>();
  return values.filter((v) => (seen.has(v) ? true : (seen.add(v), false)));
}

export interface Writes {
  /** Entity ids of the writes answered 2xx. */
  readonly acked: number[];
  /** Writes whose answer never came (the connection died): they may or may not be stored. */
  readonly unknown: number;
  /** Answers that were neither 2xx nor a connection failure (status and body). */
  readonly refused: string[];
  readonly done: Promise<void>;
  stop(): void;
}

/**
 * `writers` concurrent writers POSTing readings to `base()` until `total` acknowledged writes or
 * stop(); a write that fails at the connection (the gateway died) ends its writer.
 */
export function startWriters(base: () => string, token: string, o: { writers: number; total: number; stopOnFailure?: boolean }): Writes {
  const acked: number[] = [];
  const refused: string[] = [];
  let unknown = 0;
  let started = 0;
  let stopped = false;
  const writer = async () => {
    while (!stopped && started < o.total) {
      started++;
      try {
        const res = await fetch(`${base()}/api/v1/lecturas/`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ sensor_id: 1, valor: started }),
        });
        const text = await res.text();
        if (res.status === 201) acked.push((JSON.parse(text) as { id: number }).id);
        else {
          refused.push(`${res.status} ${text.slice(0, 200)}`);
          if (o.stopOnFailure) return;
        }
      } catch {
        unknown++;
        if (o.stopOnFailure) return;
      }
    }
  };
  const done = Promise.all(Array.from({ length: o.writers }, writer)).then(() => undefined);
  return {
    acked,
    refused,
    get unknown() {
      return unknown;
    },
    done,
    stop: () => {
      stopped = true;
    },
  };
}
