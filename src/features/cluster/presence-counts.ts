/**
 * Connections per user on one edge thread, and which changed since the last take: the edge's side of
 * the users' presence (docs/guide.md "Clustering"). open/close cost a Map update; the diff goes to
 * ingest once a second.
 */
export class PresenceCounts {
  private readonly counts = new Map<string, number>();
  private readonly changed = new Set<string>();

  opened(user: string): void {
    this.counts.set(user, (this.counts.get(user) ?? 0) + 1);
    this.changed.add(user);
  }

  closed(user: string): void {
    const left = (this.counts.get(user) ?? 1) - 1;
    if (left > 0) this.counts.set(user, left);
    else this.counts.delete(user);
    this.changed.add(user);
  }

  /** The users connected here. */
  users(): string[] {
    return [...this.counts.keys()];
  }

  /** Each user changed since the previous take with its count now (0: gone); null when none changed. */
  take(): [string, number][] | null {
    if (this.changed.size === 0) return null;
    const entries: [string, number][] = [...this.changed].map((user) => [user, this.counts.get(user) ?? 0]);
    this.changed.clear();
    return entries;
  }
}
