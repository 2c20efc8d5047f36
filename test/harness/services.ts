// Tests run against real services; this fails the run up front, with the fix, when one is absent.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { natsServerBin } from './nats.ts';
import { connectPostgres, pgSettings } from './postgres.ts';

const CHECK_TIMEOUT_MS = 2_000;

export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** A key prefix no other test (or test run) uses, so tests can share one Redis. */
export function redisPrefix(): string {
  return `respawn:t:${randomBytes(6).toString('hex')}:`;
}

interface Missing {
  service: string;
  reason: string;
  fix: string;
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

async function checkPostgres(): Promise<Missing | undefined> {
  const { host, port, user } = pgSettings();
  try {
    const client = await connectPostgres('postgres', CHECK_TIMEOUT_MS);
    await client.end();
    return undefined;
  } catch (err) {
    return {
      service: `PostgreSQL at ${host}:${port} (user ${user}, trust auth)`,
      reason: reasonOf(err),
      fix: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    };
  }
}

function pingRedis(url: URL): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: url.hostname || '127.0.0.1',
      port: Number(url.port || 6379),
    });
    let reply = '';
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(CHECK_TIMEOUT_MS, () =>
      fail(new Error(`no reply within ${CHECK_TIMEOUT_MS} ms`)),
    );
    socket.once('error', fail);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (!reply.includes('\r\n')) return;
      socket.destroy();
      if (reply.startsWith('+PONG')) resolve();
      else reject(new Error(`unexpected reply to PING: ${reply.trim()}`));
    });
  });
}

async function checkRedis(): Promise<Missing | undefined> {
  const url = redisUrl();
  try {
    await pingRedis(new URL(url));
    return undefined;
  } catch (err) {
    return {
      service: `Redis at ${url}`,
      reason: reasonOf(err),
      fix: 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no',
    };
  }
}

async function checkNatsServer(): Promise<Missing | undefined> {
  const bin = natsServerBin();
  try {
    await promisify(execFile)(bin, ['--version'], { timeout: CHECK_TIMEOUT_MS });
    return undefined;
  } catch (err) {
    return {
      service: `nats-server binary "${bin}" (NATS_SERVER_BIN)`,
      reason: reasonOf(err),
      fix: 'apt-get install nats-server (Debian package, version 2.9.10 or newer)',
    };
  }
}

/** Throws one error naming every unavailable service and how to start it. */
export async function assertServices(): Promise<void> {
  const results = await Promise.all([checkPostgres(), checkRedis(), checkNatsServer()]);
  const missing = results.filter((m): m is Missing => m !== undefined);
  if (missing.length === 0) return;
  const lines = missing.map((m) => `- ${m.service}: ${m.reason}\n  start it with: ${m.fix}`);
  throw new Error(
    `Respawn's tests need real services; ${missing.length} unavailable:\n${lines.join('\n')}`,
  );
}
