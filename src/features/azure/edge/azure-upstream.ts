/**
 * Azure Web PubSub's upstream event handlers (GATEWAY_AZURE_EVENT_HANDLERS), posted by the edge
 * thread that holds the connection, so in a cluster each event is posted once, by the node the
 * client is connected to (a reliable session handed to another thread goes on from there; nothing
 * else posts). As the service does ([DOC] reference-cloud-events, howto-develop-eventhandler):
 *
 *   - CloudEvents over HTTP, binary mode, signed with the access key (azure-upstream-wire.ts: the
 *     request's headers and the readings of the answers);
 *   - before an upstream URL is first used, the abuse-protection OPTIONS (the template with `{event}`
 *     = validate) must answer `WebHook-Allowed-Origin` naming our origin or `*`. The answer is kept;
 *     a failure is logged and counted, the upstream is not used (the event goes on as if no handler
 *     were set) and is checked again after 30 s;
 *   - `connect` is blocking: 200 `{userId, groups, roles, subprotocol}` or 204 accepts, 401/403/other
 *     4xx refuse the client with that status, a 5xx, an error or a timeout refuses it with 500;
 *   - user events are blocking too, one at a time per connection, in order: the answer's body goes
 *     back to the client (json → dataType json, text/plain → text, else binary), a failure drops the
 *     connection;
 *   - `connected` and `disconnected` are fire-and-forget, in order per connection after its earlier
 *     events, tried 3 times (1 s, then 2 s apart) on an error, a timeout, 429 or 5xx; then logged.
 *
 * Every request has GATEWAY_AZURE_EVENT_HANDLER_TIMEOUT_MS. Events waiting or in flight on this
 * thread are bounded by GATEWAY_AZURE_EVENT_QUEUE; past it new ones are dropped and counted. Hubs
 * without handlers cost one map lookup per event; nothing here blocks the thread.
 */
import type { Logger } from 'pino';
import { GatewayError } from '../../../errors/gateway-error.js';
import type { EdgeMetric } from '../../../metrics/metric-table.js';
import type { RowWriter } from '../../../metrics/shared-stats.js';
import { resolveUrl, settingFor, type EventHandlers, type EventHandlerSetting } from '../event-handlers.js';
import type { DataType } from '../frames.js';
import type { AzureConnection } from './azure-connection.js';
import { claimLists, CONTENT_TYPES, DETAIL_CHARS, parseConnectAnswer, postEvent, replyType, stateOf, type ConnectAnswer } from './azure-upstream-wire.js';

export type { ConnectAnswer };

export interface AzureUpstreamDeps {
  readonly handlers: EventHandlers;
  readonly accessKeys: readonly string[];
  readonly origin: string;
  readonly timeoutMs: number;
  readonly queueMax: number;
  readonly stats: RowWriter<EdgeMetric>;
  readonly logger: Logger;
}

/** What the gateway knows of a connection before it is accepted. */
export interface ConnectContext {
  readonly hub: string;
  readonly connectionId: string;
  readonly userId: string | null;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly query: Readonly<Record<string, string[]>>;
  readonly headers: Readonly<Record<string, string[]>>;
  readonly subprotocols: readonly string[];
}

export interface UserEventAnswer {
  /** The body to send back to the client; null for none (204, or an empty body). */
  readonly reply: { readonly dataType: DataType; readonly payload: Uint8Array } | null;
}

const RETRY_DELAYS_MS = [1_000, 2_000];
const REVALIDATE_MS = 30_000;

/** One upstream's abuse-protection check; failedAt > 0 once it failed. */
interface Check {
  failedAt: number;
  readonly ok: Promise<boolean>;
}

class UpstreamHttpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(`answered ${status}${detail === '' ? '' : `: ${detail}`}`);
  }
}

export class AzureUpstream {
  /** Abuse-protection results by validation URL: a success is kept, a failure for REVALIDATE_MS. */
  private readonly checks = new Map<string, Check>();
  /** Per connection, the end of its chain of events (ordered delivery). */
  private readonly chains = new Map<string, Promise<unknown>>();
  private pending = 0;

  constructor(private readonly deps: AzureUpstreamDeps) {}

  /** True when the hub has any handler (the one check on the hot path of other hubs). */
  serves(hub: string): boolean {
    return this.deps.handlers[hub] !== undefined;
  }

  /**
   * The `connect` event, when the hub has a usable handler for it: its answer (to apply), or a
   * GatewayError refusing the client. Null when no handler takes it.
   */
  async connect(ctx: ConnectContext): Promise<ConnectAnswer | null> {
    const setting = this.serves(ctx.hub) ? settingFor(this.deps.handlers, ctx.hub, 'connect', true) : undefined;
    if (setting === undefined || !(await this.usable(setting, ctx.hub))) return null;
    const body = JSON.stringify({
      claims: claimLists(ctx.claims),
      query: ctx.query,
      headers: ctx.headers,
      subprotocols: ctx.subprotocols,
      clientCertificates: [],
    });
    this.deps.stats.inc('azure_upstream_requests_total');
    let res: Response;
    try {
      res = await postEvent(
        this.deps,
        setting,
        ctx.hub,
        'connect',
        'azure.webpubsub.sys.connect',
        ctx.connectionId,
        ctx.userId,
        '',
        null,
        'application/json; charset=utf-8',
        body,
      );
    } catch (err) {
      this.deps.stats.inc('azure_upstream_failures_total');
      this.deps.logger.warn({ hub: ctx.hub, err: String(err) }, 'azure connect handler failed');
      throw new GatewayError('GW_ERR_AZURE_UPSTREAM_FAILED', `The connect event handler failed: ${String((err as Error).message ?? err)}`);
    }
    const text = await res.text().catch(() => '');
    if (res.status === 204 || (res.status >= 200 && res.status < 300 && text.trim() === '')) return { groups: [], roles: [], state: stateOf(res) };
    if (res.status >= 200 && res.status < 300) return parseConnectAnswer(text, stateOf(res));
    const detail = text.slice(0, DETAIL_CHARS);
    if (res.status >= 500) {
      this.deps.stats.inc('azure_upstream_failures_total');
      throw new GatewayError('GW_ERR_AZURE_UPSTREAM_FAILED', `The connect event handler answered ${res.status}${detail === '' ? '' : `: ${detail}`}`);
    }
    const code =
      res.status === 401 ? 'GW_ERR_AZURE_CONNECT_UNAUTHORIZED' : res.status === 403 ? 'GW_ERR_AZURE_CONNECT_FORBIDDEN' : 'GW_ERR_AZURE_CONNECT_REJECTED';
    throw new GatewayError(code, detail === '' ? `The connect event handler refused the connection (${res.status})` : detail);
  }

  /** `connected`: posted once the connection is open, fire-and-forget. */
  connected(conn: AzureConnection): void {
    this.notify(conn, 'connected', '{}');
  }

  /** `disconnected`: posted once the connection ended for good, fire-and-forget. */
  disconnected(conn: AzureConnection): void {
    this.notify(conn, 'disconnected', JSON.stringify({ reason: conn.endReason ?? 'The client closed the connection' }));
  }

  /**
   * A user event (a json `event` frame, a simple client's `message`). Null when the hub has no
   * handler for it (answered at once, no await); else its answer, after the connection's earlier
   * events; rejects when the handler failed (the connection is to be dropped). An event whose
   * handler fails the abuse-protection check resolves to null too.
   */
  userEvent(conn: AzureConnection, event: string, dataType: DataType, payload: Uint8Array): Promise<UserEventAnswer | null> | null {
    if (!this.serves(conn.hub)) return null;
    const setting = settingFor(this.deps.handlers, conn.hub, event, false);
    if (setting === undefined) return null;
    if (this.pending >= this.deps.queueMax) {
      this.deps.stats.inc('azure_upstream_dropped_total');
      return Promise.reject(new Error(`the upstream event queue is full (GATEWAY_AZURE_EVENT_QUEUE ${this.deps.queueMax})`));
    }
    return this.chain(conn.id, async () => {
      if (!(await this.usable(setting, conn.hub))) return null;
      this.deps.stats.inc('azure_upstream_requests_total');
      let res: Response;
      try {
        res = await postEvent(
          this.deps,
          setting,
          conn.hub,
          event,
          `azure.webpubsub.user.${event}`,
          conn.id,
          conn.userId,
          conn.subprotocol,
          conn.upstreamState,
          CONTENT_TYPES[dataType],
          payload,
        );
      } catch (err) {
        this.deps.stats.inc('azure_upstream_failures_total');
        throw err;
      }
      const body = new Uint8Array(await res.arrayBuffer());
      if (res.status < 200 || res.status >= 300) {
        this.deps.stats.inc('azure_upstream_failures_total');
        throw new UpstreamHttpError(res.status, Buffer.from(body).toString('utf8', 0, DETAIL_CHARS));
      }
      const state = stateOf(res);
      if (state !== null) conn.upstreamState = state;
      if (res.status === 204 || body.length === 0) return { reply: null };
      return { reply: { dataType: replyType(res.headers.get('content-type'), body), payload: body } };
    });
  }

  private notify(conn: AzureConnection, event: 'connected' | 'disconnected', body: string): void {
    if (!this.serves(conn.hub)) return;
    const setting = settingFor(this.deps.handlers, conn.hub, event, true);
    if (setting === undefined) return;
    if (this.pending >= this.deps.queueMax) {
      this.deps.stats.inc('azure_upstream_dropped_total');
      return;
    }
    const { id, hub, userId, subprotocol, upstreamState } = conn;
    void this.chain(id, async () => {
      if (!(await this.usable(setting, hub))) return;
      this.deps.stats.inc('azure_upstream_requests_total');
      for (let attempt = 0; ; attempt++) {
        let why: string;
        try {
          const res = await postEvent(
            this.deps,
            setting,
            hub,
            event,
            `azure.webpubsub.sys.${event}`,
            id,
            userId,
            subprotocol,
            upstreamState,
            'application/json; charset=utf-8',
            body,
          );
          await res.arrayBuffer().catch(() => undefined);
          if (res.status >= 200 && res.status < 300) return;
          why = `answered ${res.status}`;
          if (res.status !== 429 && res.status < 500) break;
        } catch (err) {
          why = String((err as Error).message ?? err);
        }
        if (attempt >= RETRY_DELAYS_MS.length) {
          this.deps.logger.warn({ hub, connectionId: id, event, why }, 'azure event handler failed, given up after retries');
          this.deps.stats.inc('azure_upstream_failures_total');
          return;
        }
        await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt]));
      }
      this.deps.logger.warn({ hub, connectionId: id, event }, 'azure event handler refused the event');
      this.deps.stats.inc('azure_upstream_failures_total');
    }).catch((err: unknown) => this.deps.logger.error({ err }, 'azure upstream event failed'));
  }

  /** Runs `work` after the connection's earlier events; counts it as pending meanwhile. */
  private chain<T>(connectionId: string, work: () => Promise<T>): Promise<T> {
    this.pending++;
    const before = this.chains.get(connectionId) ?? Promise.resolve();
    const run = before.then(work, work);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(connectionId, tail);
    void tail.then(() => {
      this.pending--;
      if (this.chains.get(connectionId) === tail) this.chains.delete(connectionId);
    });
    return run;
  }

  /**
   * The abuse-protection check of the setting's upstream (OPTIONS, `{event}` = validate): one at a
   * time per URL, a success kept, a failure kept for REVALIDATE_MS. An event that finds its upstream
   * unusable is counted as dropped.
   */
  private async usable(setting: EventHandlerSetting, hub: string): Promise<boolean> {
    const url = resolveUrl(setting.urlTemplate, hub, 'validate');
    let check = this.checks.get(url);
    if (check === undefined || (check.failedAt > 0 && Date.now() - check.failedAt >= REVALIDATE_MS)) {
      const fresh: Check = { failedAt: 0, ok: this.validate(url, hub) };
      void fresh.ok.then((good) => {
        if (!good) fresh.failedAt = Date.now();
      });
      this.checks.set(url, (check = fresh));
    }
    const good = await check.ok;
    if (!good) this.deps.stats.inc('azure_upstream_dropped_total');
    return good;
  }

  private async validate(url: string, hub: string): Promise<boolean> {
    let why: string;
    try {
      const res = await fetch(url, {
        method: 'OPTIONS',
        headers: { 'WebHook-Request-Origin': this.deps.origin, 'ce-awpsversion': '1.0' },
        signal: AbortSignal.timeout(this.deps.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      const allowed = (res.headers.get('webhook-allowed-origin') ?? '')
        .split(',')
        .map((o) => o.trim().toLowerCase())
        .filter((o) => o !== '');
      if (res.status >= 200 && res.status < 300 && (allowed.includes('*') || allowed.includes(this.deps.origin))) return true;
      why = `answered ${res.status} with WebHook-Allowed-Origin ${JSON.stringify(allowed.join(', '))}, not ${JSON.stringify(this.deps.origin)} or *`;
    } catch (err) {
      why = String((err as Error).message ?? err);
    }
    this.deps.stats.inc('azure_upstream_validation_failures_total');
    this.deps.logger.warn({ hub, url, why }, 'azure event handler failed the abuse-protection check: not used (checked again in 30 s)');
    return false;
  }
}
