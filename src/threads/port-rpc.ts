/**
 * Request/response over a MessagePort: an edge thread posts a task to a pool owned by the main
 * thread and awaits its reply. Used by the token-check pool and the store pool alike.
 */
import type { MessagePort, Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

/**
 * A message that cannot be deserialised on arrival is a `messageerror` event, not a `message`:
 * without a listener it vanishes and its sender waits forever. Every port and worker logs it.
 */
export function reportPortErrors(port: MessagePort | Worker, logger: Logger, what: string): void {
  port.on('messageerror', (err: Error) => logger.error({ err, port: what }, 'a message between threads could not be read'));
}

export interface RpcRequest<T> {
  readonly id: number;
  readonly task: T;
}

export interface RpcResponse<R> {
  readonly id: number;
  readonly reply: R;
}

/** The calling side (an edge thread). */
export class PortClient<T, R> {
  private readonly pending = new Map<number, (reply: R) => void>();
  private nextId = 1;

  constructor(private readonly port: MessagePort) {
    port.on('message', (response: RpcResponse<R>) => {
      const resolve = this.pending.get(response.id);
      this.pending.delete(response.id);
      resolve?.(response.reply);
    });
  }

  call(task: T): Promise<R> {
    const id = this.nextId++;
    return new Promise<R>((resolve) => {
      this.pending.set(id, resolve);
      this.port.postMessage({ id, task } satisfies RpcRequest<T>);
    });
  }

  close(): void {
    this.port.close();
  }
}

/** The serving side (the main thread, in front of a Piscina pool); `failed` answers a task that threw. */
export function servePort<T, R>(port: MessagePort, run: (task: T) => Promise<R>, failed: (err: unknown) => R, logger: Logger): void {
  reportPortErrors(port, logger, 'pool');
  port.on('message', (request: RpcRequest<T>) => {
    run(request.task).then(
      (reply) => port.postMessage({ id: request.id, reply } satisfies RpcResponse<R>),
      (err: unknown) => port.postMessage({ id: request.id, reply: failed(err) } satisfies RpcResponse<R>),
    );
  });
}
