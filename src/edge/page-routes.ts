/**
 * The pages the gateway serves (src/pages/): the live dashboard at `/`, the share-location viewer
 * at `/share-location?token=…` (the `viewer_url` that share-location/init returns) and the event
 * console at `/console`; and under `/assets/` what they load: their scripts, the client
 * (src/client/, the same code as `uws-gateway/client`) and msgpackr's browser modules. Everything
 * is read once at start and served from memory; nothing is fetched from the network at run time.
 *
 * The pages carry a Content-Security-Policy (pageSecurityHeaders): scripts and styles only from
 * the gateway itself (the HTML has no inline script, style or import map), connections only to
 * itself (its HTTP origin and the same host's ws: URL), no framing by other sites. The client's
 * one bare import (`msgpackr`, loaded on first msgpack use) is rewritten at load to the served
 * copy (`../msgpackr/index.js`), so neither the pages nor other origins importing
 * `/assets/client/index.js` need an import map.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { writeHead } from './http-response.js';
import type { OwnOrigin } from './request-origin.js';
import type { EdgeFeature } from './edge-feature.js';

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** dist/src (the compiled tree; the build copies the pages' html and css next to their scripts). */
const SRC = join(dirname(fileURLToPath(import.meta.url)), '..');

function filesIn(
  dir: string,
  urlPrefix: string,
  into: Map<string, StaticFile>,
  only?: (name: string) => boolean,
  rewrite?: (text: string, name: string) => string,
): void {
  for (const name of readdirSync(dir)) {
    const type = TYPES[name.slice(name.lastIndexOf('.'))];
    if (type === undefined || (only !== undefined && !only(name))) continue;
    const body = readFileSync(join(dir, name));
    into.set(`${urlPrefix}${name}`, { body: rewrite === undefined ? body : Buffer.from(rewrite(body.toString('utf8'), name)), type });
  }
}

const BARE_MSGPACKR = /(\bimport\s*\(\s*|\bfrom\s*)(['"])msgpackr\2/g;

/** The client's `import('msgpackr')` → the served copy, relative to /assets/client/ (so it works cross-origin too). */
export function resolveClientImports(text: string, name: string): string {
  if (!name.endsWith('.js')) return text;
  return text.replace(BARE_MSGPACKR, (_, before: string, quote: string) => `${before}${quote}../msgpackr/index.js${quote}`);
}

/** The files, by URL path. */
function loadPageAssets(): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  filesIn(join(SRC, 'pages'), '/assets/pages/', files);
  filesIn(join(SRC, 'client'), '/assets/client/', files, undefined, resolveClientImports);
  // What the client imports from the server's code (pure modules, no Node APIs).
  filesIn(join(SRC, 'errors'), '/assets/errors/', files, (name) => name === 'close-codes.js');
  filesIn(join(SRC, 'util'), '/assets/util/', files, (name) => name === 'backoff.js');
  let msgpackr = dirname(createRequire(import.meta.url).resolve('msgpackr'));
  while (!existsSync(join(msgpackr, 'package.json'))) msgpackr = dirname(msgpackr); // its root holds the ESM modules
  filesIn(msgpackr, '/assets/msgpackr/', files, (name) => ['index.js', 'pack.js', 'unpack.js', 'iterators.js'].includes(name));
  return files;
}

const PAGES: Readonly<Record<string, string>> = {
  '/': '/assets/pages/dashboard.html',
  '/share-location': '/assets/pages/share-viewer.html',
  '/console': '/assets/pages/console.html',
};

/**
 * The headers of a page: its CSP (connect-src names the page's own ws: or wss: URL, from its origin `own`),
 * and framing only by the gateway's own pages (frame-ancestors, and X-Frame-Options for old browsers).
 */
function pageSecurityHeaders(own: string): ReadonlyArray<readonly [string, string]> {
  const ws = own === '' ? '' : ` ${own.replace(/^http/, 'ws')}`;
  return [
    [
      'content-security-policy',
      `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'${ws}; base-uri 'none'; form-action 'self'; frame-ancestors 'self'`,
    ],
    ['x-frame-options', 'SAMEORIGIN'],
    ['referrer-policy', 'no-referrer'], // the viewer's URL carries its share token
  ];
}

function serve(res: HttpResponse, file: StaticFile, cache: string, extra: ReadonlyArray<readonly [string, string]> = []): void {
  res.cork(() => {
    writeHead(res, 200).writeHeader('content-type', file.type).writeHeader('cache-control', cache);
    for (const [name, value] of extra) res.writeHeader(name, value);
    res.end(file.body);
  });
}

function registerPageRoutes(app: TemplatedApp, files: Map<string, StaticFile>, ownOrigin: OwnOrigin): void {
  for (const [path, asset] of Object.entries(PAGES)) {
    const file = files.get(asset);
    if (file !== undefined) app.get(path, (res, req) => serve(res, file, 'no-cache', pageSecurityHeaders(ownOrigin(res, req))));
  }
  for (const [path, file] of files) {
    if (!path.endsWith('.html')) app.get(path, (res) => serve(res, file, 'no-cache'));
  }
}

/** The pages as an edge feature (edge-worker.ts lists it). */
export const pages: EdgeFeature = {
  name: 'pages',
  register({ app, requestOrigin }) {
    registerPageRoutes(app, loadPageAssets(), requestOrigin);
    return { handlers: {} };
  },
};
