/**
 * The edge's side of ingest's node-wide directory of Azure connections: a question posted on the
 * ingest port, its answer matched by id (the REST existence checks and group listings ask it).
 */
import type { MessagePort } from 'node:worker_threads';
import type { AzureAnswer, AzureQuery, EdgeToIngest } from '../threads/messages.js';

export class AzureDirectory {
  private readonly pending = new Map<number, (answer: AzureAnswer) => void>();
  private nextId = 1;

  constructor(private readonly ingestPort: MessagePort) {}

  ask(hub: string, query: AzureQuery): Promise<AzureAnswer> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ingestPort.postMessage({ t: 'azure-query', id, hub, query } satisfies EdgeToIngest);
    });
  }

  answered(id: number, value: AzureAnswer): void {
    const resolve = this.pending.get(id);
    this.pending.delete(id);
    resolve?.(value);
  }
}
