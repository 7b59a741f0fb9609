/** Share-location's thread messages (threads/messages.ts composes every feature's). */

/** A share link revoked anywhere (it came back over the bus). */
export type ShareLocationToEdge = { readonly t: 'revoked'; readonly jti: string; readonly expiresAt: number };
