/**
 * Which edge thread holds each Azure connection, and the handover of a reliable session between
 * them: with several edge threads the kernel may hand a resuming client to a thread that does not
 * hold its session (edge/azure-sessions.ts). That thread asks here; the question goes to the owner and
 * the answer (the session's state, or null) back to the asker, which becomes the owner.
 *
 * Everything goes through the same ordered ports as the Azure commands: the asker is told `start`
 * at the moment the owner is asked, so the commands the owner did not see before handing over are
 * exactly those the asker receives between `start` and the answer.
 */
import type { AzureSessionState } from '../edge/azure-connection.js';
import type { AzureToEdge } from '../messages.js';

export class AzureHandovers {
  private readonly owners = new Map<string, number>();
  private readonly pending = new Map<number, { readonly edge: number; readonly id: number; readonly connectionId: string }>();
  private nextRef = 1;

  /** `send` posts to one edge, in order with the Azure commands broadcast to it. */
  constructor(private readonly send: (edge: number, message: AzureToEdge) => void) {}

  opened(connectionId: string, edge: number): void {
    this.owners.set(connectionId, edge);
  }

  closed(connectionId: string, edge: number): void {
    if (this.owners.get(connectionId) === edge) this.owners.delete(connectionId);
  }

  /** Edge `edge` asks (its request `id`) for the session `connectionId`. */
  ask(edge: number, id: number, hub: string, connectionId: string, reconnectionToken: string): void {
    const owner = this.owners.get(connectionId);
    if (owner === undefined || owner === edge) {
      this.send(edge, { t: 'azure-handover', id, session: null });
      return;
    }
    const ref = this.nextRef++;
    this.pending.set(ref, { edge, id, connectionId });
    this.send(edge, { t: 'azure-handover-start', id, hub });
    this.send(owner, { t: 'azure-handover-ask', id: ref, hub, connectionId, reconnectionToken });
  }

  /** The owner's answer to `ref`. */
  answered(ref: number, session: AzureSessionState | null): void {
    const asked = this.pending.get(ref);
    if (asked === undefined) return;
    this.pending.delete(ref);
    if (session !== null) this.owners.set(asked.connectionId, asked.edge);
    this.send(asked.edge, { t: 'azure-handover', id: asked.id, session });
  }
}
