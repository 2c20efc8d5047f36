/**
 * A TCP relay to a real server (PostgreSQL, Redis) that a test can cut and restore, so the
 * server is unreachable for the process under test alone while the shared server keeps running
 * for everyone else. Cut: every relayed connection is destroyed and the port refuses new ones.
 * Restore: the same port accepts again.
 */
import net from 'node:net';

export interface TcpRelay {
  /** The relay's port on 127.0.0.1 (stays the same across cut and restore). */
  readonly port: number;
  /** `url` with its host and port replaced by the relay's. */
  via(url: string): string;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function tcpRelay(target: { host: string; port: number }): Promise<TcpRelay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const { port } = server.address() as net.AddressInfo;
  const cut = async () => {
    if (!server.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await closed;
  };
  return {
    port,
    via(url: string) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut,
    async restore() {
      if (!server.listening) await listen(port);
    },
    close: cut,
  };
}
