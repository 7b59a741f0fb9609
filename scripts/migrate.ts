/**
 * `npm run migrate -- --database-url postgres://…` (or GATEWAY_DATABASE_URL): applies the
 * PostgreSQL store's pending migrations (src/store/postgres/migrations.ts) by hand and prints the
 * version before and after. Safe while gateways start: it takes the same lock they will.
 * Exit status 0 when the database is at this build's version, 1 when a migration failed or the
 * database is newer than this build, 2 for a usage error.
 */
import { parseArgs } from 'node:util';
import { MIGRATIONS, migrate, schemaVersion } from '../src/store/postgres/migrations.js';
import { createPgPool } from '../src/store/postgres/pg-pool.js';

const HELP = `Usage: npm run migrate -- --database-url postgres://user:password@host:5432/db
       GATEWAY_DATABASE_URL=postgres://… npm run migrate

  --database-url  the PostgreSQL database (default: GATEWAY_DATABASE_URL)
  --status        print the database's version and this build's, apply nothing
This build knows schema versions 1 to ${MIGRATIONS.length}.`;

const { values } = parseArgs({ options: { 'database-url': { type: 'string' }, status: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const url = values['database-url'] ?? process.env.GATEWAY_DATABASE_URL;
if (!url) {
  process.stderr.write(`migrate: give --database-url or set GATEWAY_DATABASE_URL\n\n${HELP}\n`);
  process.exit(2);
}
if (!/^postgres(ql)?:\/\//.test(url)) {
  process.stderr.write('migrate: the database URL must start with postgres:// or postgresql://\n');
  process.exit(2);
}

const pool = createPgPool(url, {
  max: 1,
  statementTimeoutMs: 0,
  applicationName: 'uws-gateway migrate',
  onIdleError: (err) => process.stderr.write(`migrate: connection lost: ${err.message}\n`),
});
try {
  if (values.status) {
    process.stdout.write(`schema version ${await schemaVersion(pool)}; this build knows ${MIGRATIONS.length}\n`);
  } else {
    const report = await migrate(pool);
    for (const m of report.applied) process.stdout.write(`applied ${m.version}: ${m.name}\n`);
    process.stdout.write(`schema version ${report.before} → ${report.after}${report.applied.length === 0 ? ' (nothing to apply)' : ''}\n`);
  }
} catch (err) {
  process.stderr.write(`migrate: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
