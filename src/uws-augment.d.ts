/** What the shipped typings of uwebsockets@3.0.6 miss (docs/notes/uws.md, "Typings gaps"). */
import 'uWebSockets.js';

declare module 'uWebSockets.js' {
  /** Runtime value 1; `ListenOptions` in the .d.ts does not exist at runtime. */
  export const LIBUS_LISTEN_EXCLUSIVE_PORT: number;
}
