/**
 * The pages the gateway serves (src/pages/): the live dashboard at `/`, the share-location viewer
 * at `/share-location?token=…` (the `viewer_url` that share-location/init returns) and the event
 * console at `/console`; and under `/assets/` what they load: their scripts, the client
 * (src/client/, the same code as `uws-gateway/client`) and msgpackr's browser modules. Everything
 * is read once at start and served from memory; nothing is fetched from the network at run time.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';

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

function filesIn(dir: string, urlPrefix: string, into: Map<string, StaticFile>, only?: (name: string) => boolean): void {
  for (const name of readdirSync(dir)) {
    const type = TYPES[name.slice(name.lastIndexOf('.'))];
    if (type === undefined || (only !== undefined && !only(name))) continue;
    into.set(`${urlPrefix}${name}`, { body: readFileSync(join(dir, name)), type });
  }
}

/** The files, by URL path. */
export function loadPageAssets(): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  filesIn(join(SRC, 'pages'), '/assets/pages/', files);
  filesIn(join(SRC, 'client'), '/assets/client/', files);
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

function serve(res: HttpResponse, file: StaticFile, cache: string): void {
  res.cork(() => {
    res.writeStatus('200 OK').writeHeader('content-type', file.type).writeHeader('cache-control', cache)
      .writeHeader('x-content-type-options', 'nosniff').end(file.body);
  });
}

export function registerPageRoutes(app: TemplatedApp, files: Map<string, StaticFile>): void {
  for (const [path, asset] of Object.entries(PAGES)) {
    const file = files.get(asset);
    if (file !== undefined) app.get(path, (res) => serve(res, file, 'no-cache'));
  }
  for (const [path, file] of files) {
    if (!path.endsWith('.html')) app.get(path, (res) => serve(res, file, 'no-cache'));
  }
}
