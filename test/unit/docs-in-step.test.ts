/**
 * The docs in step with the code and with themselves: the reference tables under docs/reference/
 * are generated from the code (this fails when either changed alone: run `npm run docs`), the
 * README stays a landing page, and every relative link between the repository's Markdown files
 * names a file and a heading that exist.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DOC_TABLE_PAGES, DOC_TABLES, renderDocTables } from '../../src/config/docs-tables.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const README = read('README.md');

function markdownFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? markdownFiles(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : [],
  );
}
const DOCS = ['README.md', 'CONTRIBUTING.md', 'examples/README.md', 'bench/README.md', 'mosquitto/README.md', ...markdownFiles('docs')];

/** Outside code fences only. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const m of prose(markdown).matchAll(/^#{1,6} (.*)$/gm))
    out.add(
      m[1]
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}_\- ]/gu, '')
        .replace(/ /g, '-'),
    );
  return out;
}

describe('reference tables', () => {
  it.each(Object.entries(DOC_TABLE_PAGES))('%s matches the code (run `npm run docs`)', (page, names) => {
    const text = read(page);
    expect(renderDocTables(text, names)).toBe(text);
  });

  it('every generated table is on a page', () => {
    expect(Object.values(DOC_TABLE_PAGES).flat().sort()).toEqual(Object.keys(DOC_TABLES).sort());
  });
});

describe('README', () => {
  it('starts with the install-and-run and install-and-test commands', () => {
    const head = README.split('\n').slice(0, 12).join('\n');
    expect(head).toContain('npm ci && npm start');
    expect(head).toContain('npm ci && npm test');
  });

  it('is a landing page: well under 10 KB, no reference tables', () => {
    expect(Buffer.byteLength(README)).toBeLessThan(8 * 1024);
    expect(README).not.toContain('<!-- table:');
  });
});

describe('Markdown links', () => {
  it.each(DOCS)('%s: relative links name files and headings that exist, and nothing cites ../shared', (file) => {
    const text = read(file);
    expect(text).not.toMatch(/\.\.\/shared\//);
    const broken: string[] = [];
    for (const m of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/.test(target)) continue;
      const [path, anchor] = target.split('#');
      const resolved = path ? normalize(join(dirname(file), path)) : file;
      if (relative(ROOT, join(ROOT, resolved)).startsWith('..') || !existsSync(join(ROOT, resolved))) {
        broken.push(target);
        continue;
      }
      if (anchor && resolved.endsWith('.md') && !anchors(read(resolved)).has(anchor)) broken.push(target);
    }
    expect(broken).toEqual([]);
  });
});
