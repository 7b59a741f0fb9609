import { createServer } from 'node:net';

/**
 * A free port below Linux's ephemeral range (32768+), for a gateway restarted on the same port:
 * a client that keeps reconnecting to an ephemeral port that nobody listens on can be given that
 * same port as its source and connect to itself, and then the restarted gateway cannot bind.
 * Also for PostgreSQL (scripts/local-postgres.ts), which cannot listen on port 0.
 */
export async function freeFixedPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer()
        .once('error', () => resolve(false))
        .listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
}
