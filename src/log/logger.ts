/**
 * Structured logs (pino) to stdout, one JSON object a line. Each thread builds its own root
 * logger with a `thread` field; components take child loggers. Secrets in known fields are
 * redacted.
 */
import pino, { type Logger } from 'pino';
import type { LogLevel } from '../config/config.js';

export type { Logger };

export function createLogger(level: LogLevel, thread: string): Logger {
  return pino(
    {
      level,
      base: { thread },
      redact: { paths: ['token', 'password', '*.token', '*.password', 'authorization', '*.authorization'], censor: '[redacted]' },
    },
    // Synchronous writes to fd 1: logs are low volume (hot-path logs are rate-limited) and a
    // thread that exits must not lose its last lines.
    pino.destination({ dest: 1, sync: true }),
  );
}

/** An MQTT URL with any password removed, fit for logs and /stats. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
