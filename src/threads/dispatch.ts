/**
 * Exhaustive dispatch of thread messages: a message type nobody handles is a compile error.
 *
 * A feature handles its messages with a handler map (`Handlers<M>`: one entry per `t` of its union,
 * exhaustive by construction); a `switch` on `t` ends in `default: unreachable(message)`, which
 * compiles only when every variant has its case.
 */

/** One handler per message type of `M`, each taking exactly its variant. */
export type Handlers<M extends { readonly t: string }, A extends unknown[] = []> = {
  readonly [K in M['t']]: (message: Extract<M, { readonly t: K }>, ...args: A) => void;
};

/** The `default` of an exhaustive switch: `message` is `never` there unless a case is missing. */
export function unreachable(message: never): never {
  throw new Error(`no handler for thread message ${JSON.stringify((message as { t?: unknown } | null)?.t)}`);
}
