/** A small typed event emitter that runs in browsers and Node alike (no `events` module). */
type Args<T> = T extends (...args: infer A) => void ? A : never;

export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<(...args: any[]) => void>>();

  /** Adds a listener; the function returned removes it. */
  on<K extends keyof Events>(event: K, listener: (...args: Args<Events[K]>) => void): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: (...args: Args<Events[K]>) => void): void {
    this.listeners.get(event)?.delete(listener);
  }

  protected emit<K extends keyof Events>(event: K, ...args: Args<Events[K]>): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        listener(...args);
      } catch (err) {
        // A listener's bug must not break the connection; it surfaces as an uncaught error.
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}
