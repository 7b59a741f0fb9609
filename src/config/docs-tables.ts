/**
 * The reference tables under docs/reference/, generated from the code (env table, error catalogue,
 * close codes, metric table) so they cannot drift: `npm run docs` rewrites them and
 * test/unit/docs-in-step.test.ts fails when a page differs.
 */
import { ENV_TABLE } from './env-table.js';
import { CLOSE, type CloseName } from '../errors/close-codes.js';
import { ERRORS } from '../errors/error-codes.js';
import { BROKER_METRICS, EDGE_METRICS, HEALTH_METRICS, INGEST_METRICS, STORE_METRICS } from '../metrics/metric-table.js';

const CLOSE_DOCS: Readonly<Record<CloseName, string>> = {
  NORMAL: 'Normal closure; the gateway sends it with the reason of one of the next rows.',
  SHARE_LINK_EXPIRED: 'A share link expired during the connection, after the `expired` event.',
  AZURE_RESUMED_ELSEWHERE: 'An Azure Web PubSub reliable session was resumed on another socket; this one ends.',
  CLIENT_STOPPED: 'Sent by the client library (`uws-gateway/client`) when the application calls `stop()`.',
  GOING_AWAY: 'The gateway is shutting down (SIGTERM); reconnect, with backoff, to this or another node.',
  POLICY_VIOLATION:
    'Invalid, expired or revoked token before or during the connection, or a device/channel the token may not see; an `error` event says which (the reason repeats its message).',
  SHARE_LINK_REVOKED: 'A share link was revoked during the connection, after the `revoked` event.',
  MESSAGE_TOO_BIG:
    "A client frame was larger than the route's limit (`GATEWAY_MAX_FRAME_BYTES`; 1 MB on the Azure client routes), after an `error` event (Azure: `disconnected`, whose message is also the close reason). Past the limit + 64 KiB uWS cuts the connection itself: 1006, see below.",
  SERVER_ERROR: 'Unexpected server error on this connection.',
  SLOW_CONSUMER: 'The socket stayed behind longer than `GATEWAY_SLOW_CONSUMER_TIMEOUT_MS`; reconnect (you get a snapshot again).',
  AZURE_SLOW_CONSUMER: 'The same for an Azure Web PubSub client socket.',
  TOKEN_EXPIRED: 'The token expired while connected and no `refresh_token` frame renewed it; get a fresh token and reconnect.',
  RATE_LIMITED: 'More than `GATEWAY_FRAME_RATE` frames per second (burst `GATEWAY_FRAME_BURST`); back off and reconnect.',
  INVALID_REQUEST: 'Missing, empty, oversized or invalid `device_ids`; an `error` event precedes it. Do not retry unchanged.',
  TOO_MANY_BAD_FRAMES: 'More than `GATEWAY_MAX_BAD_FRAMES` bad frames in a minute, after the `GW_ERR_TOO_MANY_BAD_FRAMES` error event.',
};

const cell = (text: string) => text.replace(/\|/g, '\\|');

function configTable(): string {
  const rows = ENV_TABLE.map(
    (v) =>
      `| \`${v.name}\` | ${v.default === undefined ? '(unset)' : v.name === 'GATEWAY_THREADS' ? 'cores − 1' : `\`${v.default}\``} | ${cell(v.description)} |`,
  );
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

function closeCodeTable(): string {
  const rows = (Object.keys(CLOSE) as CloseName[]).map((name) => {
    const close = CLOSE[name];
    const reason = close.reason === null ? "the error's message" : close.reason === '' ? '(none)' : `\`${close.reason}\``;
    return `| ${close.code} | \`${name}\` | ${reason} | ${close.reconnect ? 'yes' : 'no'} | ${cell(CLOSE_DOCS[name])} |`;
  });
  return ['| code | name | reason | reconnect? | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}

function errorTable(): string {
  const rows = (Object.keys(ERRORS) as Array<keyof typeof ERRORS>).map((code) => {
    const spec = ERRORS[code];
    return `| \`${code}\` | ${spec.status} | ${spec.close?.code ?? '—'} | ${cell(spec.description)} |`;
  });
  return ['| code | HTTP | close | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

function metricTable(): string {
  const rows = [...INGEST_METRICS, ...EDGE_METRICS, ...BROKER_METRICS, ...STORE_METRICS, ...HEALTH_METRICS].map(
    (m) => `| \`gateway_${m.key}\` | ${m.kind} | ${cell(m.help)} |`,
  );
  return ['| metric | type | meaning |', '|---|---|---|', ...rows].join('\n');
}

export const DOC_TABLES: Readonly<Record<string, () => string>> = {
  config: configTable,
  'close-codes': closeCodeTable,
  errors: errorTable,
  metrics: metricTable,
};

/** Which page (path from the repository root) holds which tables. */
export const DOC_TABLE_PAGES: Readonly<Record<string, readonly string[]>> = {
  'docs/reference/configuration.md': ['config'],
  'docs/reference/errors.md': ['errors'],
  'docs/reference/close-codes.md': ['close-codes'],
  'docs/reference/metrics.md': ['metrics'],
};

/** Replaces each `<!-- table:NAME -->…<!-- /table:NAME -->` section of `markdown`, for each of `names`. */
export function renderDocTables(markdown: string, names: readonly string[]): string {
  let out = markdown;
  for (const name of names) {
    const render = DOC_TABLES[name];
    if (!render) throw new Error(`no generated table named ${name}`);
    const pattern = new RegExp(`(<!-- table:${name} -->)[\\s\\S]*?(<!-- /table:${name} -->)`);
    if (!pattern.test(out)) throw new Error(`the page has no <!-- table:${name} --> section`);
    out = out.replace(pattern, (_all, start: string, end: string) => `${start}\n${render()}\n${end}`);
  }
  return out;
}
