/** The users' thread messages (threads/messages.ts composes every feature's). */

/** A user/role event from the bus, encoded once per format; target `all`, `user/<id>` or `role/<role>`. */
export type UsersToEdge = { readonly t: 'event'; readonly target: string; readonly json: string; readonly msgpack: Uint8Array };
