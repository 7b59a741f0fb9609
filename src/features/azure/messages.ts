/** Azure Web PubSub's thread messages (threads/messages.ts composes every feature's). */
import type { AzureCommand, CommandStamp } from './commands.js';
import type { RenderedMessage } from './frames.js';
import type { AzurePermission } from './permissions.js';
import type { UserGroup } from './user-groups.js';
import type { AzureSessionState } from './edge/azure-connection.js';

export type AzureToEdge =
  /** An Azure Web PubSub command from the bus, checked; a send comes rendered once. */
  | { readonly t: 'azure'; readonly hub: string; readonly command: AzureCommand; readonly message: RenderedMessage | null; readonly stamp?: CommandStamp }
  /** Once, at start: the user-group relations kept in the store, with the commands heard while they were read (user-groups.ts). */
  | { readonly t: 'azure-user-groups'; readonly entries: readonly UserGroup[] }
  /** The answer to one edge's azure-query. */
  | { readonly t: 'azure-answer'; readonly id: number; readonly value: AzureAnswer }
  /**
   * Session handover (edge/azure-sessions.ts): to the asking edge, `start` when its question went to the
   * owner (hold the hub's traffic from here; `remote`: the owner is another node, tell ingest your
   * positions) and then the answer with the owner's positions (drop what is held at or below them);
   * to the owner, the question, with the asker's positions when it is another node's (wait for them).
   */
  | { readonly t: 'azure-handover-start'; readonly id: number; readonly hub: string; readonly remote?: boolean }
  | { readonly t: 'azure-handover'; readonly id: number; readonly session: AzureSessionState | null; readonly positions?: Positions }
  | {
      readonly t: 'azure-handover-ask';
      readonly id: number;
      readonly hub: string;
      readonly connectionId: string;
      readonly reconnectionToken: string;
      readonly positions?: Positions;
    };

/** How far an edge is in a hub's traffic: per publisher (or `c:<channel>`), the last command (offset) it applied. */
export type Positions = readonly (readonly [string, number])[];

export type AzureToIngest =
  | { readonly t: 'azure-presence'; readonly hub: string; readonly change: AzurePresence }
  | { readonly t: 'azure-query'; readonly id: number; readonly hub: string; readonly query: AzureQuery }
  /** A client resumes here a session this edge does not hold; ingest asks the owner. */
  | { readonly t: 'azure-handover-ask'; readonly id: number; readonly hub: string; readonly connectionId: string; readonly reconnectionToken: string }
  /** The owner's answer to ingest's azure-handover-ask `id`. */
  | { readonly t: 'azure-handover-state'; readonly id: number; readonly session: AzureSessionState | null; readonly positions?: Positions }
  /** The asking edge's positions at `start` of a handover from another node (ingest sends them with the question). */
  | { readonly t: 'azure-handover-positions'; readonly id: number; readonly positions: Positions };

/** What an edge asks ingest's node-wide directory of Azure connections (the REST existence checks). */
export type AzureQuery =
  | { readonly kind: 'connection' | 'group' | 'user' | 'groupMembers'; readonly name: string }
  | { readonly kind: 'users' }
  | { readonly kind: 'permission'; readonly connectionId: string; readonly permission: AzurePermission; readonly targetName?: string };

export type AzureAnswer = boolean | readonly string[] | readonly { readonly connectionId: string; readonly userId: string | null }[];

/** An edge's Azure connections as they change (ingest keeps the node-wide directory from these). */
export type AzurePresence =
  | { readonly op: 'open'; readonly id: string; readonly userId: string | null; readonly roles: readonly string[]; readonly groups: readonly string[] }
  | { readonly op: 'close'; readonly id: string }
  | { readonly op: 'join' | 'leave'; readonly id: string; readonly group: string };
