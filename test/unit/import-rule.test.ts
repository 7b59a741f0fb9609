/**
 * The import rule (eslint.config.js), proved on small samples linted as if they lived at a given
 * path: each restriction fires where it should and stays quiet where the import is allowed, so a
 * loosened config fails here. Type information is switched off (the samples are in no tsconfig);
 * the import rule needs none.
 */
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

const RULES = new Set(['no-restricted-imports', 'no-restricted-syntax']);
const eslint = new ESLint({
  cwd: new URL('../..', import.meta.url).pathname,
  overrideConfig: [tseslint.configs.disableTypeChecked],
  ruleFilter: ({ ruleId }) => RULES.has(ruleId),
});

/** The rule ids reported for `code` as the file at `filePath`. */
async function reported(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath, warnIgnored: true });
  const fatal = result.messages.filter((m) => m.fatal);
  expect(fatal, `${filePath}: ${fatal[0]?.message}`).toEqual([]);
  return result.messages.map((m) => m.ruleId ?? '');
}

const importOf = (specifier: string) => `import * as m from '${specifier}';\nexport { m };\n`;

describe('import rule: uWebSockets.js only in edge code', () => {
  it.each([
    'src/ingest/x.ts',
    'src/features/telemetry/ingest/x.ts',
    'src/features/channels/store/x.ts',
    'src/features/azure/x.ts',
    'src/threads/x.ts',
    'src/broker/x.ts',
    'src/main.ts',
  ])('is refused in %s', async (filePath) => {
    expect(await reported(filePath, importOf('uWebSockets.js'))).toEqual(['no-restricted-imports']);
    expect(await reported(filePath, "import type { WebSocket } from 'uWebSockets.js';\nexport type W = WebSocket<unknown>;\n")).toEqual([
      'no-restricted-imports',
    ]);
    expect(await reported(filePath, "export const m = await import('uWebSockets.js');\n")).toEqual(['no-restricted-syntax']);
  });

  it.each(['src/edge/x.ts', 'src/edge/deeper/x.ts', 'src/features/telemetry/edge/x.ts', 'src/features/azure/edge/x.ts', 'src/uws-augment.d.ts'])(
    'is allowed in %s',
    async (filePath) => {
      expect(await reported(filePath, importOf('uWebSockets.js'))).toEqual([]);
    },
  );
});

describe('import rule: mqtt only in ingest code', () => {
  it.each([
    'src/edge/x.ts',
    'src/features/telemetry/edge/x.ts',
    'src/features/channels/store/x.ts',
    'src/features/trips/x.ts',
    'src/threads/x.ts',
    'src/pool/x.ts',
  ])('is refused in %s', async (filePath) => {
    expect(await reported(filePath, importOf('mqtt'))).toEqual(['no-restricted-imports']);
    expect(await reported(filePath, "export const m = await import('mqtt');\n")).toEqual(['no-restricted-syntax']);
  });

  it.each(['src/ingest/x.ts', 'src/features/telemetry/ingest/x.ts', 'src/features/channels/ingest/x.ts', 'src/broker/x.ts'])(
    'is allowed in %s',
    async (filePath) => {
      expect(await reported(filePath, importOf('mqtt'))).toEqual([]);
    },
  );
});

describe('import rule: browser code imports nothing from Node', () => {
  const refused = [
    'node:fs',
    'node:worker_threads',
    'fs',
    'events',
    'path/posix',
    'crypto',
    'uWebSockets.js',
    'mqtt',
    'better-sqlite3',
    'piscina',
    'pino',
    'aedes',
    'prom-client',
  ];
  it.each(['src/client/x.ts', 'src/pages/x.ts'])('refuses Node modules and server packages in %s', async (filePath) => {
    for (const specifier of refused) expect(await reported(filePath, importOf(specifier)), specifier).toEqual(['no-restricted-imports']);
    expect(await reported(filePath, "export const m = await import('node:fs');\n")).toEqual(['no-restricted-syntax']);
  });

  it('allows the shared browser-safe code and browser-capable packages', async () => {
    for (const specifier of ['./codec.js', '../util/backoff.js', '../errors/close-codes.js', 'msgpackr']) {
      expect(await reported('src/client/x.ts', importOf(specifier)), specifier).toEqual([]);
    }
  });

  it('leaves server code its Node modules', async () => {
    expect(await reported('src/threads/x.ts', importOf('node:worker_threads'))).toEqual([]);
    expect(await reported('src/edge/x.ts', importOf('pino'))).toEqual([]);
  });
});

describe("import rule: a feature imports only another feature's root files", () => {
  it.each([
    ['src/features/share-location/edge/x.ts', '../../telemetry/edge/stream-route.js'],
    ['src/features/trips/store/x.ts', '../../channels/store/event-log.js'],
    ['src/features/channels/ingest/x.ts', '../../azure/ingest/azure-pipeline.js'],
    ['src/features/trips/x.ts', '../users/edge/user-socket.js'],
    ['src/features/telemetry/edge/x.ts', '../../../features/channels/edge/channel-history.js'],
  ])('%s may not import %s', async (filePath, specifier) => {
    expect(await reported(filePath, importOf(specifier))).toEqual(['no-restricted-imports']);
    expect(await reported(filePath, `export { m } from '${specifier}';\n`)).toEqual(['no-restricted-imports']);
    expect(await reported(filePath, `export const m = await import('${specifier}');\n`)).toEqual(['no-restricted-syntax']);
  });

  it.each([
    ['src/features/share-location/edge/x.ts', '../../telemetry/device-ids.js'],
    ['src/features/trips/store/x.ts', '../../channels/channel-event.js'],
    ['src/features/channels/ingest/x.ts', '../store/event-log.js'],
    ['src/features/channels/ingest/x.ts', '../../../edge/http-response.js'],
    ['src/features/azure/edge/x.ts', './azure-sessions.js'],
    ['src/pool/x.ts', '../features/channels/store/entity-store.js'],
    ['src/edge/x.ts', '../features/telemetry/edge/stream-route.js'],
  ])('%s may import %s', async (filePath, specifier) => {
    expect(await reported(filePath, importOf(specifier))).toEqual([]);
  });
});

describe('import rule: outside src/', () => {
  it('does not apply to tests, benchmarks and scripts', async () => {
    for (const filePath of ['test/unit/x.test.ts', 'bench/x.ts', 'scripts/x.ts']) {
      expect(await reported(filePath, `${importOf('uWebSockets.js')}import 'mqtt';\n`), filePath).toEqual([]);
    }
  });
});
