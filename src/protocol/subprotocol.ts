/**
 * Sec-WebSocket-Protocol negotiation (RFC 6455 §4.2.2): the client offers a comma-separated list;
 * the server picks one it speaks and echoes exactly that token. No header means the endpoint's
 * default. uWS sends whatever string it is given, so the caller must pass only the chosen token
 * (or '' when nothing was offered): see docs/notes/uws.md.
 */
type Negotiation<T extends string> =
  { readonly ok: true; readonly chosen: T; readonly echo: string } | { readonly ok: false; readonly offered: readonly string[] };

export function parseOffered(header: string): string[] {
  return header
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * @param supported tokens this endpoint speaks, mapped to what they select.
 * @param fallback what to select when the client offered nothing.
 */
export function negotiate<T extends string>(header: string, supported: Readonly<Record<string, T>>, fallback: T): Negotiation<T> {
  const offered = parseOffered(header);
  if (offered.length === 0) return { ok: true, chosen: fallback, echo: '' };
  for (const token of offered) {
    const chosen = Object.hasOwn(supported, token) ? supported[token] : undefined;
    if (chosen !== undefined) return { ok: true, chosen, echo: token };
  }
  return { ok: false, offered };
}
