/**
 * The reference tables under docs/reference/, generated from the code (env table, error catalogue,
 * close codes, metric table) so they cannot drift: `npm run docs` rewrites them and
 * test/unit/docs-in-step.test.ts fails when a page differs.
 */
import { ENV_TABLE } from './env-table.js';
import { CloseCode, shouldReconnect } from '../errors/close-codes.js';
import { ERRORS } from '../errors/error-codes.js';
import { BROKER_METRICS, EDGE_METRICS, HEALTH_METRICS, INGEST_METRICS } from '../metrics/metric-table.js';

const CLOSE_DOCS: Readonly<Record<keyof typeof CloseCode, string>> = {
  NORMAL: 'Normal closure.',
  GOING_AWAY: 'The gateway is shutting down (SIGTERM); reconnect, with backoff, to this or another node.',
  POLICY_VIOLATION: 'Invalid, expired or revoked token before or during the connection, or a device/channel the token may not see; an `error` event says which.',
  MESSAGE_TOO_BIG: 'A client frame was larger than the route\'s limit (`GATEWAY_MAX_FRAME_BYTES`; 1 MB on the Azure client routes), after an `error` event (Azure: `disconnected`). Past the limit + 64 KiB uWS cuts the connection itself: 1006, see below.',
  SERVER_ERROR: 'Unexpected server error on this connection.',
  SLOW_CONSUMER: 'The socket stayed behind longer than `GATEWAY_SLOW_CONSUMER_TIMEOUT_MS`; reconnect (you get a snapshot again).',
  TOKEN_EXPIRED: 'The token expired while connected and no `refresh_token` frame renewed it; get a fresh token and reconnect.',
  RATE_LIMITED: 'More than `GATEWAY_FRAME_RATE` frames per second (burst `GATEWAY_FRAME_BURST`); back off and reconnect.',
  INVALID_REQUEST: 'Missing, empty, oversized or invalid `device_ids`; an `error` event precedes it. Do not retry unchanged.',
  TOO_MANY_BAD_FRAMES: 'More than `GATEWAY_MAX_BAD_FRAMES` bad frames in a minute, after the `GW_ERR_TOO_MANY_BAD_FRAMES` error event.',
};

const cell = (text: string) => text.replace(/\|/g, '\\|');

export function configTable(): string {
  const rows = ENV_TABLE.map((v) => `| \`${v.name}\` | ${v.default === undefined ? '(unset)' : v.name === 'GATEWAY_THREADS' ? 'cores − 1' : `\`${v.default}\``} | ${cell(v.description)} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

export function closeCodeTable(): string {
  const rows = (Object.keys(CloseCode) as Array<keyof typeof CloseCode>).map((name) =>
    `| ${CloseCode[name]} | \`${name}\` | ${shouldReconnect(CloseCode[name]) ? 'yes' : 'no'} | ${cell(CLOSE_DOCS[name])} |`);
  return ['| code | name | reconnect? | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

export function errorTable(): string {
  const rows = (Object.keys(ERRORS) as Array<keyof typeof ERRORS>).map((code) => {
    const spec = ERRORS[code];
    return `| \`${code}\` | ${spec.status} | ${spec.close ?? '—'} | ${cell(spec.description)} |`;
  });
  return ['| code | HTTP | close | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

export function metricTable(): string {
  const rows = [...INGEST_METRICS, ...EDGE_METRICS, ...BROKER_METRICS, ...HEALTH_METRICS].map((m) => `| \`gateway_${m.key}\` | ${m.kind} | ${cell(m.help)} |`);
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
