/** `npm run docs`: regenerates the README's reference tables from the code. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderDocTables } from '../src/config/docs-tables.js';

const readme = fileURLToPath(new URL('../../README.md', import.meta.url));
const before = readFileSync(readme, 'utf8');
const after = renderDocTables(before);
writeFileSync(readme, after);
process.stdout.write(before === after ? 'README tables already up to date\n' : 'README tables regenerated\n');
