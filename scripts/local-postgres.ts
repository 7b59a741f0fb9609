/**
 * A throwaway PostgreSQL server for a test or a benchmark (test/helpers/postgres.ts, bench/suite/rest-writes.ts):
 * `initdb` into a fresh temporary directory, `pg_ctl -w start` on a free port on 127.0.0.1 (its unix
 * socket inside that directory), trust authentication for the superuser `gateway_test`. By default
 * the durability settings a test server does not need are off (fsync, synchronous_commit,
 * full_page_writes); `durable: true` keeps PostgreSQL's defaults (fsync, synchronous_commit and
 * full_page_writes on), as a benchmark must. Debian's `postgresql` package (15), installed by
 * .ci/run; the binaries are looked up in /usr/lib/postgresql/<version>/bin (newest first), then PATH.
 *
 * PostgreSQL refuses to run as root, so a root process runs every PostgreSQL command through
 * `runuser -u postgres --` (the OS user Debian's package creates) and hands the directory to it.
 *
 * The caller registers the teardown (`onTestFinished(pg.stop)`, `afterAll`, a `finally`). If the test process
 * dies first, two fallbacks stop the server: an `exit` handler (a normal exit, an uncaught error)
 * sends the postmaster SIGQUIT; a watchdog shell (which also survives SIGKILL of the test process)
 * notices within a second that the process is gone, stops the server and removes the directory.
 *
 * Cost on this 2-core box: about 1.2 s for initdb, 0.15 s for the start and 0.1 s for the stop.
 * A test file that needs several clean databases starts one server and calls `newDatabase()`
 * (CREATE DATABASE, tens of milliseconds) rather than one server per test.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freeFixedPort } from './free-fixed-port.js';

export interface Postgres {
  /** postgres://gateway_test@127.0.0.1:<port>/postgres (trust authentication: no password). */
  readonly url: string;
  readonly port: number;
  /** A new, empty database on this server; returns its URL. */
  newDatabase(name?: string): Promise<string>;
  /** `pg_ctl stop -m immediate`: the server goes as in a crash (no checkpoint, every connection dropped); the directory stays. */
  crash(): Promise<void>;
  /** Starts the server again, on the same port, after crash() (recovery from the WAL first). */
  start(): Promise<void>;
  /** `pg_ctl stop -m fast`, then removes the directory. Harmless when called twice. */
  stop(): Promise<void>;
}

export interface PostgresOptions {
  /** Keep fsync, synchronous_commit and full_page_writes on (PostgreSQL's defaults). Default false: a test server. */
  readonly durable?: boolean;
  /** Extra postgresql.conf lines (e.g. `max_connections = 300`), after the helper's own. */
  readonly settings?: readonly string[];
}

export const TEST_ROLE = 'gateway_test';
const OS_USER = 'postgres';
const INSTALL_HINT = "install Debian's postgresql (apt-get install postgresql; .ci/run does)";

const execFileAsync = promisify(execFile);

/** The directory of initdb, pg_ctl and postgres: the newest /usr/lib/postgresql/<version>/bin, else PATH. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length > 0) return join(root, versions[0], 'bin');
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  throw new Error(`PostgreSQL is not installed: no initdb in /usr/lib/postgresql/*/bin or on PATH; ${INSTALL_HINT}`);
}

interface OsUser {
  readonly uid: number;
  readonly gid: number;
}

/** The `postgres` OS user when this process is root (PostgreSQL will not run as root), else undefined. */
function runAsUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${OS_USER}:`));
  if (!line) {
    throw new Error(
      `this process runs as root and PostgreSQL refuses to; it runs the server as the OS user "${OS_USER}", which does not exist (Debian's postgresql package creates it: ${INSTALL_HINT}, or useradd --system ${OS_USER})`,
    );
  }
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function chownTree(path: string, user: OsUser): void {
  execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, path]);
}

export async function startPostgres(options: PostgresOptions = {}): Promise<Postgres> {
  const bin = postgresBinDir();
  const user = runAsUser();
  const command = (tool: string, args: string[]): [string, string[]] =>
    user ? ['runuser', ['-u', OS_USER, '--', join(bin, tool), ...args]] : [join(bin, tool), args];
  const run = async (tool: string, args: string[]) => {
    const [cmd, argv] = command(tool, args);
    try {
      await execFileAsync(cmd, argv, { timeout: 60_000 });
    } catch (err) {
      const e = err as Error & { stderr?: string; stdout?: string };
      throw new Error(`${tool} failed: ${e.message}${e.stderr ? `\n${e.stderr}` : ''}`);
    }
  };

  const dir = mkdtempSync(join(tmpdir(), 'gw-postgres-'));
  const data = join(dir, 'data');
  const log = join(dir, 'postgres.log');
  if (user) {
    chmodSync(dir, 0o700);
    chownTree(dir, user);
  }
  let watchdog: number | undefined;
  let stopped = false;
  const removeDir = () => rmSync(dir, { recursive: true, force: true });

  // SIGQUIT is PostgreSQL's immediate shutdown: synchronous and instant, as an exit handler must be.
  const onExit = () => {
    try {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // no pid file or no such process: nothing is running
    }
  };

  try {
    // --no-sync: initdb's own fsync of the new cluster (seconds on a slow disk) is not needed either.
    await run('initdb', ['-D', data, '-U', TEST_ROLE, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    const settings = [
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      // A test server loses nothing it needs in a crash: no fsync, no waiting for the WAL flush.
      ...(options.durable ? [] : ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off']),
      'wal_level = minimal',
      'max_wal_senders = 0',
      'max_connections = 200',
      "log_min_messages = 'warning'",
      ...(options.settings ?? []),
    ];
    await appendFile(join(data, 'postgresql.conf'), `\n# scripts/local-postgres.ts\n${settings.join('\n')}\n`);

    // The port is checked free, then bound by postgres: another process may take it in between, so try a few.
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freeFixedPort();
      try {
        await run('pg_ctl', ['-D', data, '-l', log, '-o', `-p ${port}`, '-w', '-t', '30', '-s', 'start']);
        break;
      } catch (err) {
        const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
        if (attempt < 3 && /could not bind|Address already in use/.test(tail)) continue;
        throw new Error(`${(err as Error).message}\n${tail}`);
      }
    }
    process.once('exit', onExit);
    watchdog = startWatchdog(dir, data, command('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']));

    const url = `postgres://${TEST_ROLE}@127.0.0.1:${port}/postgres`;
    let databases = 0;
    return {
      url,
      port,
      async newDatabase(name = `test_${++databases}`) {
        if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE ${name}`);
        } finally {
          await client.end();
        }
        return `postgres://${TEST_ROLE}@127.0.0.1:${port}/${name}`;
      },
      async crash() {
        await run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-s', 'stop']);
      },
      async start() {
        try {
          await run('pg_ctl', ['-D', data, '-l', log, '-o', `-p ${port}`, '-w', '-t', '30', '-s', 'start']);
        } catch (err) {
          throw new Error(`${(err as Error).message}\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : ''}`);
        }
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        process.removeListener('exit', onExit);
        if (watchdog !== undefined) process.kill(watchdog, 'SIGKILL');
        // Not running (crashed and not started again): nothing to stop.
        if (existsSync(join(data, 'postmaster.pid'))) await run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-s', 'stop']);
        removeDir();
      },
    };
  } catch (err) {
    process.removeListener('exit', onExit);
    if (watchdog !== undefined) process.kill(watchdog, 'SIGKILL');
    onExit();
    removeDir();
    throw err;
  }
}

/**
 * A detached shell that waits for this process to end (even by SIGKILL, which runs no handler),
 * then stops the server and removes its directory. Killed by `stop()`.
 */
function startWatchdog(dir: string, data: string, [cmd, args]: [string, string[]]): number {
  const script = join(dir, 'watchdog.sh');
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  writeFileSync(
    script,
    [
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
      `[ -f ${quote(join(data, 'postmaster.pid'))} ] && ${[cmd, ...args].map(quote).join(' ')} >/dev/null 2>&1`,
      `rm -rf ${quote(dir)}`,
      '',
    ].join('\n'),
  );
  const child = spawn('sh', [script], { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid!;
}
