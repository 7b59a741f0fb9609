/**
 * Exhaustive dispatch of thread messages (threads/dispatch.ts): a message type nobody handles does
 * not compile. The `@ts-expect-error` lines are the proof: each must be an error, or the typecheck
 * of test/ fails; the expectTypeOf lines are checked by the same typecheck.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { startEdge, type EdgeContext, type UnhandledBy as UnhandledOnEdge } from '../../src/edge/edge-feature.js';
import type { pages } from '../../src/edge/page-routes.js';
import type { AzureEdge } from '../../src/features/azure/edge/azure-edge.js';
import type { AzureIngest } from '../../src/features/azure/ingest/azure-ingest.js';
import type { channelsEdge } from '../../src/features/channels/edge/channels-edge.js';
import type { channelsIngest } from '../../src/features/channels/ingest/channels-ingest.js';
import type { ClusterIngest } from '../../src/features/cluster/ingest/cluster-ingest.js';
import type { operations } from '../../src/features/operations/edge/operations-edge.js';
import type { shareLocation } from '../../src/features/share-location/edge/share-location-edge.js';
import { telemetry } from '../../src/features/telemetry/edge/telemetry-edge.js';
import type { telemetry as telemetryIngest } from '../../src/features/telemetry/ingest/telemetry-ingest.js';
import type { trips } from '../../src/features/trips/edge/trips-edge.js';
import type { users } from '../../src/features/users/edge/users-edge.js';
import type { UnhandledBy as UnhandledOnIngest } from '../../src/ingest/ingest-feature.js';
import { unreachable, type Handlers } from '../../src/threads/dispatch.js';

type Message = { readonly t: 'a'; readonly n: number } | { readonly t: 'b'; readonly s: string };

describe('exhaustive dispatch', () => {
  it('a handler map takes one handler per message type, each with its own variant', () => {
    const seen: unknown[] = [];
    const handlers: Handlers<Message> = {
      a: (m) => seen.push(m.n),
      b: (m) => seen.push(m.s),
    };
    handlers.a({ t: 'a', n: 1 });
    handlers.b({ t: 'b', s: 'x' });
    expect(seen).toEqual([1, 'x']);
    // @ts-expect-error: no handler for 'b'
    const missing: Handlers<Message> = { a: () => undefined };
    expect(missing).toBeDefined();
  });

  it('a switch that misses a case does not compile', () => {
    const whole = (m: Message): string => {
      switch (m.t) {
        case 'a':
          return 'a';
        case 'b':
          return 'b';
        default:
          return unreachable(m);
      }
    };
    const partial = (m: Message): string => {
      // eslint-disable-next-line @typescript-eslint/switch-exhaustiveness-check -- the missing case is what this test is about
      switch (m.t) {
        case 'a':
          return 'a';
        default:
          // @ts-expect-error: 'b' reaches the default
          return unreachable(m);
      }
    };
    expect(whole({ t: 'b', s: '' })).toBe('b');
    expect(() => partial({ t: 'b', s: '' })).toThrow('no handler for thread message "b"');
  });

  it("the edge root's feature list handles every ingest → edge message, and one without users does not", () => {
    type Edge = [
      typeof telemetry,
      typeof shareLocation,
      ReturnType<typeof channelsEdge>,
      typeof users,
      AzureEdge,
      typeof trips,
      typeof pages,
      typeof operations,
    ];
    expectTypeOf<UnhandledOnEdge<Edge>>().toEqualTypeOf<never>();
    type WithoutUsers = [typeof telemetry, typeof shareLocation, ReturnType<typeof channelsEdge>, AzureEdge, typeof trips, typeof pages, typeof operations];
    expectTypeOf<UnhandledOnEdge<WithoutUsers>>().toEqualTypeOf<'event'>();
    // Never called: startEdge with a list that leaves messages unhandled is a compile error.
    const onlyTelemetry = (context: EdgeContext) =>
      // @ts-expect-error: share-location, channels, users and azure messages have no handler
      startEdge(context, [telemetry]);
    expect(onlyTelemetry).toBeTypeOf('function');
  });

  it("the ingest root's feature list handles every edge → ingest message", () => {
    type Ingest = [typeof telemetryIngest, ReturnType<typeof channelsIngest>, AzureIngest, ClusterIngest];
    expectTypeOf<UnhandledOnIngest<Ingest>>().toEqualTypeOf<never>();
    expectTypeOf<UnhandledOnIngest<[typeof telemetryIngest, AzureIngest, ClusterIngest]>>().toEqualTypeOf<'outbox' | 'catch-up'>();
    expectTypeOf<UnhandledOnIngest<[typeof telemetryIngest, ReturnType<typeof channelsIngest>, AzureIngest]>>().toEqualTypeOf<'user-presence'>();
  });
});
