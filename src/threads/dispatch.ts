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

/** The message types a feature's part handles: the keys of the handlers its register returns. */
type HandledBy<F> = F extends { register(context: never): { readonly handlers: infer H } } ? keyof H : never;

/** The message types of `M` that no feature of the list `F` handles. */
export type UnhandledBy<M extends { readonly t: string }, F extends readonly unknown[]> = Exclude<M['t'], HandledBy<F[number]>>;

/** Compiles only when every message of `M` has a handler in the feature list `F` (the thread roots' lists). */
export type HandlesEveryMessage<M extends { readonly t: string }, F extends readonly unknown[]> = [UnhandledBy<M, F>] extends [never]
  ? unknown
  : { readonly 'thread messages no listed feature handles': UnhandledBy<M, F> };
