/** The README's tables are generated from the code; this fails when either changed alone. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderDocTables } from '../../src/config/docs-tables.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('has config, close-code, error and metric tables that match the code (run `npm run docs`)', () => {
    expect(renderDocTables(README)).toBe(README);
  });

  it('starts with the install-and-run and install-and-test commands', () => {
    const head = README.split('\n').slice(0, 12).join('\n');
    expect(head).toContain('npm ci && npm start');
    expect(head).toContain('npm ci && npm test');
  });
});
