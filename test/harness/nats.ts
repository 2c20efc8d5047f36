// A private nats-server per test file, configured exactly like production (deploy/nats).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface NatsServerHandle {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** The current process id; it changes after `restart()`. */
  readonly pid: number;
  stop(): Promise<void>;
  /**
   * SIGTERM and start again on the same port and store. With `downMs`: killed (SIGKILL, as a
   * crash), down that long, then started again.
   */
  restart(downMs?: number): Promise<void>;
}

export interface StartNatsOptions {
  /** Defaults to true, as in production. */
  jetstream?: boolean;
}

const CONFIG_URL = new URL('../../deploy/nats/respawn.conf', import.meta.url);
const READY_TIMEOUT_MS = 10_000;
const POLL_MS = 50;
const STOP_GRACE_MS = 5_000;

export function natsServerBin(): string {
  return process.env.NATS_SERVER_BIN ?? 'nats-server';
}

// Servers still running when the test process exits would outlive it and hold ports; the
// value is the server's temp dir, which nothing else would remove.
const running = new Map<ChildProcess, string>();
let exitHookInstalled = false;

function track(child: ChildProcess, dir: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Only synchronous work runs in an 'exit' handler.
    process.on('exit', () => {
      for (const [c, d] of running) {
        c.kill('SIGKILL');
        // Best effort: the dying server may still be writing its log; a leftover temp dir must
        // not turn a passing run into a crash at exit.
        try {
          rmSync(d, { recursive: true, force: true, maxRetries: 3 });
        } catch {
          // Left for the OS to clean up with the rest of tmpdir.
        }
      }
    });
  }
  running.set(child, dir);
  child.once('exit', () => running.delete(child));
}

// Kept so a readiness failure can say why the binary did not start (e.g. ENOENT).
const spawnErrors = new WeakMap<ChildProcess, Error>();

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port assigned');
  return address.port;
}

async function writeConfig(dir: string, jetstream: boolean): Promise<string> {
  const source = await readFile(CONFIG_URL, 'utf8');
  // The production store_dir is shared and root-owned; `-sd` cannot override it because the
  // server rejects a config store_dir that disagrees with the flag, so rewrite the line instead.
  let config = source.replace(
    /^(\s*)store_dir:.*$/m,
    `$1store_dir: ${JSON.stringify(path.join(dir, 'js'))}`,
  );
  if (!jetstream) config = config.replace(/^jetstream\s*\{[^}]*\}/m, '');
  const file = path.join(dir, 'nats.conf');
  await writeFile(file, config);
  return file;
}

async function tail(file: string, lines = 30): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function spawnServer(dir: string, configFile: string, port: number): ChildProcess {
  // stderr goes to a file, not a pipe: config errors are printed before the log file opens,
  // and an unread pipe would keep the test process alive.
  const stderr = openSync(path.join(dir, 'nats.stderr'), 'a');
  try {
    const args = ['-c', configFile, '-a', '127.0.0.1', '-p', String(port)];
    const child = spawn(natsServerBin(), [...args, '-l', path.join(dir, 'nats.log')], {
      stdio: ['ignore', 'ignore', stderr],
    });
    // Without a listener a spawn failure (ENOENT) would crash the test process.
    child.on('error', (err) => spawnErrors.set(child, err));
    child.unref();
    track(child, dir);
    return child;
  } finally {
    closeSync(stderr);
  }
}

async function waitReady(child: ChildProcess, dir: string, port: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited(child)) break;
    if (await canConnect(port)) return;
    await sleep(POLL_MS);
  }
  const spawnError = spawnErrors.get(child);
  const why = spawnError
    ? `could not be started: ${spawnError.message}`
    : exited(child)
      ? `exited (code ${child.exitCode}, signal ${child.signalCode})`
      : `did not accept connections on port ${port} within ${READY_TIMEOUT_MS} ms`;
  child.kill('SIGKILL');
  const log = await tail(path.join(dir, 'nats.log'));
  const stderr = await tail(path.join(dir, 'nats.stderr'));
  throw new Error(`nats-server ${why}.\n--- nats.log ---\n${log}\n--- stderr ---\n${stderr}`);
}

async function terminate(
  child: ChildProcess,
  signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM',
): Promise<void> {
  if (exited(child) || child.pid === undefined) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await gone;
  } finally {
    clearTimeout(timer);
  }
}

export async function startNats(opts: StartNatsOptions = {}): Promise<NatsServerHandle> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'respawn-nats-'));
  try {
    const configFile = await writeConfig(dir, opts.jetstream ?? true);
    const port = await freePort();
    const launch = async (): Promise<ChildProcess> => {
      const child = spawnServer(dir, configFile, port);
      await waitReady(child, dir, port);
      return child;
    };
    let child = await launch();
    return {
      url: `nats://127.0.0.1:${port}`,
      port,
      dir,
      get pid() {
        return child.pid ?? -1;
      },
      async stop() {
        await terminate(child);
        await rm(dir, { recursive: true, force: true });
      },
      async restart(downMs = 0) {
        await terminate(child, downMs > 0 ? 'SIGKILL' : 'SIGTERM');
        if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
        child = await launch();
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
