/**
 * A standalone aedes broker for benchmark runs on machines without Mosquitto. Nagle is off on
 * every client socket (docs/notes/latency.md). Logs `{"msg":"broker listening","port":N}`.
 */
import { createServer, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';

const aedes = await Aedes.createBroker();
const server = createServer((socket) => {
  socket.setNoDelay(true);
  aedes.handle(socket);
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'broker listening', port: (server.address() as AddressInfo).port })}\n`);
});
const stop = () => aedes.close(() => server.close(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
