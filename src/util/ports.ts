/** Ports on this machine: picking a free one, and waiting until one accepts connections. */
import { connect, createServer, type AddressInfo } from 'node:net';

/**
 * A port free right now on `host`. For listeners that cannot take port 0 and report back: uWS
 * threads sharing one port, Mosquitto. (Another process could take it before they bind: a race
 * that the caller's listen error reports.)
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, host, resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function accepts(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Resolves once `port` accepts a TCP connection; rejects past `timeoutMs`, or as soon as `failed()`
 * returns an error (the process that should listen has died).
 */
export async function waitForPort(port: number, timeoutMs: number, failed: () => Error | undefined = () => undefined, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await accepts(port, host))) {
    const failure = failed();
    if (failure) throw failure;
    if (Date.now() > deadline) throw new Error(`nothing listened on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
