/** Share-location's thread messages (threads/messages.ts composes every feature's). */

export type ShareLocationToEdge =
  /** A share link revoked anywhere (it came back over the bus). */
  | { readonly t: 'revoked'; readonly jti: string; readonly expiresAt: number }
  /**
   * The unexpired revocations kept in the store, read by ingest as it starts and sent before any
   * other message of this feature: until it arrives an edge refuses share links (GW_ERR_NOT_READY),
   * so a restarted node never accepts a link revoked before it stopped.
   */
  | { readonly t: 'revocations-init'; readonly revocations: readonly { readonly jti: string; readonly expiresAt: number }[] };
