/** The cluster feature's thread messages (threads/messages.ts composes every feature's). */

/**
 * An edge's /ws/connect users whose connection count changed since its last message, each with its
 * count on that edge now (0: gone). Sent at most once a second (presence-counts.ts), never per message.
 */
export type ClusterToIngest = { readonly t: 'user-presence'; readonly entries: readonly (readonly [userId: string, connections: number])[] };
