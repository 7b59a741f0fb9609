/**
 * Revoked share links by `jti`, each kept until its token would have expired anyway (so the list
 * never grows past the links alive at once). In memory; every edge thread holds one and applies
 * the same revocations: those kept in the store, loaded once at start (`load`), then each one the
 * bus brings. Until `load`, nothing can be known revoked, so `loaded` is false and links are refused.
 */
import type { Revocations } from './share-tokens.js';

export class RevocationList implements Revocations {
  private readonly revoked = new Map<string, number>();
  private loadedValue = false;

  constructor(private readonly now: () => number = Date.now) {}

  revoke(jti: string, expiresAt: number): void {
    this.revoked.set(jti, expiresAt);
  }

  /** The revocations kept in the store, as the node starts (share-location's `revocations-init`). */
  load(revocations: readonly { readonly jti: string; readonly expiresAt: number }[]): void {
    for (const { jti, expiresAt } of revocations) this.revoke(jti, expiresAt);
    this.loadedValue = true;
  }

  get loaded(): boolean {
    return this.loadedValue;
  }

  isRevoked(jti: string): boolean {
    const until = this.revoked.get(jti);
    if (until === undefined) return false;
    if (until <= this.now()) {
      this.revoked.delete(jti);
      return false; // expired anyway: the expiry check refuses it
    }
    return true;
  }

  /** Drops entries past their expiry; call now and then. */
  purge(): void {
    const now = this.now();
    for (const [jti, until] of this.revoked) if (until <= now) this.revoked.delete(jti);
  }

  get size(): number {
    return this.revoked.size;
  }
}
