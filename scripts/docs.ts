/** `npm run docs`: regenerates the reference tables under docs/reference/ from the code. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DOC_TABLE_PAGES, renderDocTables } from '../src/config/docs-tables.js';

for (const [page, names] of Object.entries(DOC_TABLE_PAGES)) {
  const path = fileURLToPath(new URL(`../../${page}`, import.meta.url));
  const before = readFileSync(path, 'utf8');
  const after = renderDocTables(before, names);
  writeFileSync(path, after);
  process.stdout.write(`${page}: ${before === after ? 'tables already up to date' : 'tables regenerated'}\n`);
}
