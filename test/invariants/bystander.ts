/**
 * A well-behaved client (the real `ws` library, which checks what the server sends: UTF-8 of text
 * frames, the framing) that must keep receiving while others misbehave. Unlike the test helper's
 * stream client it never throws from its message handler: a frame it cannot decode, an error or a
 * close is recorded and reported by the invariant check as a violation.
 */
import WebSocket from 'ws';
import { unpack } from 'msgpackr';
import { onTestFinished } from 'vitest';

export class Bystander {
  readonly frames: any[] = [];
  readonly problems: string[] = [];
  closedWith: { code: number; reason: string } | null = null;
  /** When it was disconnected (ms since the epoch). */
  closedAt: number | null = null;
  private waiters: (() => void)[] = [];

  private constructor(
    readonly name: string,
    readonly ws: WebSocket,
  ) {
    ws.on('message', (data: Buffer, isBinary) => {
      try {
        this.frames.push(isBinary ? unpack(data) : JSON.parse(data.toString('utf8')));
      } catch (err) {
        this.problems.push(`${name}: a ${isBinary ? 'binary' : 'text'} frame of ${data.length} bytes did not decode (${(err as Error).message})`);
      }
      this.wake();
    });
    ws.on('error', (err) => this.problems.push(`${name}: ${err.message}`));
    ws.on('close', (code, reason) => {
      this.closedWith = { code, reason: reason.toString() };
      this.closedAt = Date.now();
      this.wake();
    });
    onTestFinished(() => {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
    });
  }

  /** Opens the connection and waits for the first frame matching `ready` (connection_established, subscribed…). */
  static async open(name: string, url: string, protocol: string | undefined, ready: (f: any) => boolean, timeoutMs = 10_000): Promise<Bystander> {
    const ws = new WebSocket(url, protocol === undefined ? [] : [protocol]);
    const b = new Bystander(name, ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`${name}: upgrade refused with ${res.statusCode}`)));
      ws.once('error', reject);
    });
    if (!(await b.waitFor(ready, timeoutMs))) throw new Error(`${name}: no ready frame; got ${JSON.stringify(b.frames).slice(0, 300)}`);
    return b;
  }

  /** Resolves true when a frame matching `predicate` has arrived (any time since open), false after the timeout or a close. */
  async waitFor(predicate: (f: any) => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let i = 0;
    for (;;) {
      for (; i < this.frames.length; i++) if (predicate(this.frames[i])) return true;
      const left = deadline - Date.now();
      if (left <= 0 || this.closedWith !== null) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** What is wrong with this client so far: undecodable frames, errors, a close. */
  violations(): string[] {
    const out = [...this.problems];
    if (this.closedWith !== null) out.push(`${this.name} was disconnected (${this.closedWith.code} ${this.closedWith.reason})`);
    return out;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
