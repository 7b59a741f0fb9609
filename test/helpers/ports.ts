import { createServer, type AddressInfo } from 'node:net';

/** A port free right now on 127.0.0.1, for programs that cannot listen on port 0 and report it (Mosquitto). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
