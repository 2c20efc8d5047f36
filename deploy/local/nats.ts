/**
 * A private nats-server for `npm start`, from deploy/nats/respawn.conf (Respawn needs the
 * server's subject mappings; the machine's shared NATS has none), data under .tmp/nats.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** A port nothing listens on right now (for URLs that must be known before listening). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface LocalNats {
  url: string;
  /** Undefined when a server already listened on the port and was reused. */
  child: ChildProcess | undefined;
  stop(): Promise<void>;
}

export async function startLocalNats(opts: {
  root: string;
  port: number;
  log: Logger;
  bin?: string;
}): Promise<LocalNats> {
  const url = `nats://127.0.0.1:${opts.port}`;
  if (await portOpen(opts.port)) {
    opts.log.info({ url }, 'a NATS server already listens on the local port; using it');
    return { url, child: undefined, stop: () => Promise.resolve() };
  }
  const dir = path.join(opts.root, '.tmp', 'nats');
  mkdirSync(dir, { recursive: true });
  const conf = readFileSync(path.join(opts.root, 'deploy/nats/respawn.conf'), 'utf8').replace(
    /store_dir: .*/,
    `store_dir: "${path.join(dir, 'js')}"`,
  );
  writeFileSync(path.join(dir, 'nats.conf'), conf);
  const bin = opts.bin ?? 'nats-server';
  const args = ['-c', path.join(dir, 'nats.conf'), '-a', '127.0.0.1', '-p', String(opts.port)];
  // Its own process group: Ctrl-C reaches only us, and we stop the server last, after the
  // components that drain into it.
  const child = spawn(bin, [...args, '-l', path.join(dir, 'nats.log')], {
    stdio: 'ignore',
    detached: true,
  });
  const killOnExit = (): void => void child.kill('SIGTERM');
  process.once('exit', killOnExit);
  const failed = new Promise<never>((_, reject) =>
    child.once('error', (err) =>
      reject(
        new Error(`cannot start ${bin}: install Debian's nats-server package or set NATS_URL`, {
          cause: err,
        }),
      ),
    ),
  );
  const deadline = Date.now() + 10_000;
  const up = (async () => {
    while (!(await portOpen(opts.port))) {
      if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${opts.port}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await Promise.race([up, failed]);
  return {
    url,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        process.off('exit', killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
