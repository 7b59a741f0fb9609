/**
 * The edge's questions to ingest about Azure connections, each posted on the ingest port and its
 * answer matched by id: the node-wide directory (the REST existence checks and group listings ask
 * it), and the handover of a reliable session another edge thread holds (a client resuming here).
 */
import type { MessagePort } from 'node:worker_threads';
import type { AzureAnswer, AzureQuery, AzureToIngest } from '../messages.js';
import type { AzureConnection } from './azure-connection.js';

export class AzureDirectory {
  private readonly pending = new Map<number, (answer: never) => void>();
  private nextId = 1;

  constructor(private readonly ingestPort: MessagePort) {}

  private request<A>(post: (id: number) => AzureToIngest): Promise<A> {
    const id = this.nextId++;
    return new Promise<A>((resolve) => {
      this.pending.set(id, resolve as (answer: never) => void);
      this.ingestPort.postMessage(post(id));
    });
  }

  ask(hub: string, query: AzureQuery): Promise<AzureAnswer> {
    return this.request((id) => ({ t: 'azure-query', id, hub, query }));
  }

  /** The session, adopted by this thread's AzureSessions when the answer came; null when no thread had it. */
  handover(hub: string, connectionId: string, reconnectionToken: string): Promise<AzureConnection | null> {
    return this.request((id) => ({ t: 'azure-handover-ask', id, hub, connectionId, reconnectionToken }));
  }

  answered(id: number, value: AzureAnswer | AzureConnection | null): void {
    const resolve = this.pending.get(id) as ((answer: typeof value) => void) | undefined;
    this.pending.delete(id);
    resolve?.(value);
  }
}
