import type { Logger } from 'pino';

/**
 * Logs at most `perInterval` lines per interval for a kind of event that can arrive by the
 * thousand (bad payloads, bad frames); the next line after a quiet spell reports how many were
 * suppressed. Counting is the metrics' job; this only keeps the log readable.
 */
export class RateLimitedLog {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly perInterval = 10,
    private readonly intervalMs = 10_000,
  ) {}

  warn(fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - this.windowStart >= this.intervalMs) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perInterval) {
      this.suppressed++;
      return;
    }
    this.inWindow++;
    if (this.suppressed > 0) {
      this.logger.warn({ ...fields, suppressed: this.suppressed }, msg);
      this.suppressed = 0;
    } else {
      this.logger.warn(fields, msg);
    }
  }
}
