/**
 * Build step: copies the pages' html and css (src/pages/) next to their compiled scripts in
 * dist/src/pages/, where the gateway serves them from (edge/page-routes.ts).
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const from = join(root, 'src', 'pages');
const to = join(root, 'dist', 'src', 'pages');
mkdirSync(to, { recursive: true });
for (const name of readdirSync(from)) {
  if (name.endsWith('.html') || name.endsWith('.css')) copyFileSync(join(from, name), join(to, name));
}
