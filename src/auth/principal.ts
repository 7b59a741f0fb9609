/** Who a verified JWT says the caller is. Only what authorization needs; no raw claims are kept. */
export interface Principal {
  readonly userId: string;
  readonly roles: readonly string[];
  /** Expiry, ms since the epoch. */
  readonly expiresAt: number;
  /** Devices, channels and groups the token itself grants, on top of its roles. */
  readonly devices: readonly string[];
  readonly channels: readonly string[];
  readonly groups: readonly string[];
}
