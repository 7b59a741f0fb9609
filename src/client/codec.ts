/**
 * The two wire formats. JSON needs nothing; msgpack loads msgpackr on first use, so JSON clients
 * never need it. In a browser, the copy the gateway serves under /assets/client/ imports the
 * gateway's /assets/msgpackr/ instead (edge/page-routes.ts); a bundled copy resolves `msgpackr` itself.
 */
export type Format = 'json' | 'msgpack';

export interface Decoder {
  decode(data: string | ArrayBuffer | Uint8Array): unknown;
}

const JSON_DECODER: Decoder = {
  decode: (data) => JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data)),
};

export async function decoderFor(format: Format): Promise<Decoder> {
  if (format === 'json') return JSON_DECODER;
  const { unpack } = await import('msgpackr');
  return {
    decode: (data) => (typeof data === 'string' ? JSON.parse(data) : unpack(data instanceof Uint8Array ? data : new Uint8Array(data))),
  };
}
