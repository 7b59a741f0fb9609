/**
 * Which edge thread holds each Azure connection, and the handover of a reliable session between
 * them: with several edge threads the kernel may hand a resuming client to a thread that does not
 * hold its session (edge/azure-sessions.ts). That thread asks here; the question goes to the owner and
 * the answer (the session's state, or null) back to the asker, which becomes the owner. A session
 * no thread here holds may be on another node (azure-remote-handovers.ts: `remote`).
 *
 * Everything goes through the same ordered ports as the Azure commands: the asker is told `start`
 * at the moment the owner is asked, so the commands the owner did not see before handing over are
 * exactly those the asker receives between `start` and the answer.
 */
import type { AzureSessionState } from '../edge/azure-connection.js';
import type { AzureToEdge, Positions } from '../messages.js';

type Answer = (session: AzureSessionState | null, positions: Positions | undefined) => void;

export class AzureHandovers {
  private readonly owners = new Map<string, number>();
  private readonly pending = new Map<number, Answer>();
  private nextRef = 1;

  /**
   * `send` posts to one edge, in order with the Azure commands broadcast to it. `remote` takes a
   * question for a session no edge here holds (true: another node has it, the answer will come).
   */
  constructor(
    private readonly send: (edge: number, message: AzureToEdge) => void,
    private readonly remote: (edge: number, id: number, hub: string, connectionId: string, reconnectionToken: string) => boolean = () => false,
  ) {}

  opened(connectionId: string, edge: number): void {
    this.owners.set(connectionId, edge);
  }

  closed(connectionId: string, edge: number): void {
    if (this.owners.get(connectionId) === edge) this.owners.delete(connectionId);
  }

  /** Edge `edge` asks (its request `id`) for the session `connectionId`. */
  ask(edge: number, id: number, hub: string, connectionId: string, reconnectionToken: string): void {
    const owner = this.owners.get(connectionId);
    if (owner === edge || (owner === undefined && !this.remote(edge, id, hub, connectionId, reconnectionToken))) {
      this.send(edge, { t: 'azure-handover', id, session: null });
      return;
    }
    if (owner === undefined) return; // another node's: azure-remote-handovers.ts answers
    this.send(edge, { t: 'azure-handover-start', id, hub });
    this.forward(owner, hub, connectionId, reconnectionToken, undefined, (session) => {
      if (session !== null) this.owners.set(connectionId, edge);
      this.send(edge, { t: 'azure-handover', id, session });
    });
  }

  /** Another node asks: the owner edge gets the question with that node's positions. False: no edge here holds it. */
  askOwner(
    hub: string,
    connectionId: string,
    reconnectionToken: string,
    positions: Positions,
    answered: (s: AzureSessionState | null, p: Positions) => void,
  ): boolean {
    const owner = this.owners.get(connectionId);
    if (owner === undefined) return false;
    this.forward(owner, hub, connectionId, reconnectionToken, positions, (session, at) => {
      if (session !== null) this.owners.delete(connectionId);
      answered(session, at ?? []);
    });
    return true;
  }

  private forward(owner: number, hub: string, connectionId: string, reconnectionToken: string, positions: Positions | undefined, answer: Answer): void {
    const ref = this.nextRef++;
    this.pending.set(ref, answer);
    this.send(owner, { t: 'azure-handover-ask', id: ref, hub, connectionId, reconnectionToken, ...(positions === undefined ? {} : { positions }) });
  }

  /** The owner's answer to `ref`. */
  answered(ref: number, session: AzureSessionState | null, positions?: Positions): void {
    const answer = this.pending.get(ref);
    if (answer === undefined) return;
    this.pending.delete(ref);
    answer(session, positions);
  }
}
