/**
 * The frames a test client has received, and `next(predicate)`: the first frame after the previous
 * match that satisfies `predicate`, waited for (never polled) until a deadline or the end of the
 * connection. One implementation for the clients over `ws` (stream-client.ts) and over a raw socket
 * (raw-ws-client.ts).
 */
export class FrameInbox<F> {
  readonly frames: F[] = [];
  private cursor = 0;
  private waiters: (() => void)[] = [];

  /** `ended`: null while the connection is open, else how it ended (for the error message). */
  constructor(private readonly ended: () => string | null) {}

  push(frame: F): void {
    this.frames.push(frame);
    this.wake();
  }

  /** Lets pending `next` calls look again (a frame arrived, or the connection ended). */
  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  next(predicate: (f: F) => boolean = () => true, timeoutMs = 5000): Promise<F> {
    const recent = () => JSON.stringify(this.frames.slice(-3)).slice(0, 1000);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms; got ${recent()}`)), timeoutMs);
      const check = () => {
        while (this.cursor < this.frames.length) {
          const f = this.frames[this.cursor++];
          if (predicate(f)) {
            clearTimeout(timer);
            resolve(f);
            return;
          }
        }
        const ended = this.ended();
        if (ended !== null) {
          clearTimeout(timer);
          reject(new Error(`${ended}; frames: ${recent()}`));
          return;
        }
        this.waiters.push(check);
      };
      check();
    });
  }
}
