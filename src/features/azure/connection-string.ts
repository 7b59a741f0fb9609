/**
 * Azure Web PubSub connection strings (`Endpoint=…;AccessKey=…;Port=…;Version=1.0;`), parsed the way
 * the JS SDK parses them (docs/compat/azure-webpubsub.md §1.1): pieces split on `;`, the key before the
 * first `=` (case-insensitive), unknown keys ignored, `https://` added to an endpoint without a
 * scheme, `Port` overriding the endpoint's port (an empty `Port=` removing it).
 */
interface ConnectionString {
  /** WHATWG-serialised, ending with `/` (`http://localhost:8080/`). */
  readonly endpoint: string;
  /** Signs and checks HS256 tokens as its UTF-8 bytes (never base64-decoded). */
  readonly accessKey: string;
}

export function parseConnectionString(text: string): ConnectionString {
  const pieces = new Map<string, string>();
  for (const piece of text.split(';')) {
    const eq = piece.indexOf('=');
    if (eq < 0) continue;
    pieces.set(piece.slice(0, eq).trim().toLowerCase(), piece.slice(eq + 1).trim());
  }
  const rawEndpoint = pieces.get('endpoint');
  if (!rawEndpoint) throw new Error('connection string missing endpoint');
  const accessKey = pieces.get('accesskey');
  if (!accessKey) throw new Error('connection string missing access key');
  let url: URL;
  try {
    url = new URL(rawEndpoint.startsWith('http') ? rawEndpoint : `https://${rawEndpoint}`);
  } catch {
    throw new Error(`connection string endpoint ${JSON.stringify(rawEndpoint.slice(0, 80))} is not a URL`);
  }
  const port = pieces.get('port');
  if (port !== undefined) {
    if (port !== '' && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535))
      throw new Error(`connection string Port must be 1..65535 (got ${JSON.stringify(port)})`);
    url.port = port;
  }
  return { endpoint: url.toString(), accessKey };
}

/** The connection string a client of this gateway uses (what `negotiate` and docs/guide/azure.md print). */
export function formatConnectionString(endpoint: string, accessKey: string): string {
  const url = new URL(endpoint);
  return `Endpoint=${url.protocol}//${url.hostname};Port=${url.port || (url.protocol === 'https:' ? '443' : '80')};AccessKey=${accessKey};Version=1.0;`;
}
