/**
 * nats-servers started from the committed deploy/nats files, not from test copies: the
 * secure single node (respawn-secure.conf = respawn.conf + auth.conf) and the three-node
 * cluster (cluster/node-N.conf + mappings.conf + ../auth.conf). The files are copied to a temp
 * directory with only ports, addresses and store directories rewritten; each rewrite must
 * match, so a reshaped config fails here instead of being tested half-applied.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { natsInboxPrefix, type NatsUser } from '../../contracts/index.ts';
import { natsServerBin } from '../harness/index.ts';
import { readRepo } from './support.ts';

/** TEST-ONLY passwords for deploy/nats/auth.conf's users; never used outside tests. */
export const TEST_NATS_PASSWORDS: Readonly<Record<NatsUser, string>> = {
  gateway: 'testOnlyGateway0123456789',
  actors: 'testOnlyActors0123456789',
  operator: 'testOnlyOperator0123456789',
  services: 'testOnlyServices0123456789',
};

/** The server's environment: each user's password variable, as auth.conf names it. */
export const TEST_NATS_ENV: Readonly<Record<string, string>> = {
  RESPAWN_NATS_GATEWAY_PASSWORD: TEST_NATS_PASSWORDS.gateway,
  RESPAWN_NATS_ACTORS_PASSWORD: TEST_NATS_PASSWORDS.actors,
  RESPAWN_NATS_OPERATOR_PASSWORD: TEST_NATS_PASSWORDS.operator,
  RESPAWN_NATS_SERVICES_PASSWORD: TEST_NATS_PASSWORDS.services,
};

export async function freePort(): Promise<number> {
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

/** `text` with `pattern` replaced; throws when the pattern is not in the committed file. */
function rewrite(text: string, pattern: RegExp, replacement: string, file: string): string {
  if (!pattern.test(text)) throw new Error(`${file}: expected ${String(pattern)} to rewrite`);
  return text.replace(pattern, replacement);
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

export interface NatsNode {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  running(): boolean;
  kill(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
}

function node(name: string, dir: string, configFile: string, port: number): NatsNode {
  let child: ChildProcess | undefined;
  const alive = (): boolean =>
    child !== undefined && child.exitCode === null && child.signalCode === null;
  return {
    name,
    url: `nats://127.0.0.1:${port}`,
    port,
    running: alive,
    async start() {
      const stderr = openSync(path.join(dir, `${name}.stderr`), 'a');
      try {
        child = spawn(natsServerBin(), ['-c', configFile, '-l', path.join(dir, `${name}.log`)], {
          env: { ...process.env, ...TEST_NATS_ENV },
          stdio: ['ignore', 'ignore', stderr],
        });
      } finally {
        closeSync(stderr);
      }
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        if (!alive()) break;
        if (await canConnect(port)) return;
        await sleep(50);
      }
      const log = await readFile(path.join(dir, `${name}.log`), 'utf8').catch(() => '');
      const err = await readFile(path.join(dir, `${name}.stderr`), 'utf8').catch(() => '');
      child?.kill('SIGKILL');
      throw new Error(`nats-server ${name} did not start\n${log.slice(-2000)}\n${err}`);
    },
    async kill(signal = 'SIGKILL') {
      const c = child;
      if (c === undefined || !alive()) return;
      const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill(signal);
      await gone;
    },
  };
}

export interface SecureNats {
  readonly url: string;
  /** The server's log so far (refusals are logged as `Publish Violation - User "x"`). */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** One node from deploy/nats/respawn-secure.conf (respawn.conf + auth.conf). */
export async function startSecureNats(): Promise<SecureNats> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'respawn-nats-secure-'));
  const port = await freePort();
  let base = readRepo('deploy/nats/respawn.conf');
  base = rewrite(base, /^port: \d+$/m, `port: ${port}`, 'respawn.conf');
  base = rewrite(
    base,
    /^(\s*)store_dir:.*$/m,
    `$1store_dir: ${JSON.stringify(path.join(dir, 'js'))}`,
    'respawn.conf',
  );
  await writeFile(path.join(dir, 'respawn.conf'), base);
  await writeFile(path.join(dir, 'auth.conf'), readRepo('deploy/nats/auth.conf'));
  await writeFile(
    path.join(dir, 'respawn-secure.conf'),
    readRepo('deploy/nats/respawn-secure.conf'),
  );
  const n = node('secure', dir, path.join(dir, 'respawn-secure.conf'), port);
  await n.start();
  return {
    url: n.url,
    log: () => readFile(path.join(dir, 'secure.log'), 'utf8'),
    async stop() {
      await n.kill('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** Every node's client URL, comma-separated: what NATS_URL holds. */
  readonly urls: string;
  stop(): Promise<void>;
}

/** The three nodes of deploy/nats/cluster on loopback ports, each with its own store. */
export async function startCluster(): Promise<NatsCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'respawn-nats-cluster-'));
  await mkdir(path.join(dir, 'cluster'));
  await writeFile(path.join(dir, 'auth.conf'), readRepo('deploy/nats/auth.conf'));
  await writeFile(
    path.join(dir, 'cluster', 'mappings.conf'),
    readRepo('deploy/nats/cluster/mappings.conf'),
  );
  const ids = [1, 2, 3];
  const clientPorts = await Promise.all(ids.map(() => freePort()));
  const routePorts = await Promise.all(ids.map(() => freePort()));
  const nodes: NatsNode[] = [];
  for (const id of ids) {
    const file = `node-${id}.conf`;
    let text = readRepo(`deploy/nats/cluster/${file}`);
    text = rewrite(text, /^port: \d+$/m, `port: ${clientPorts[id - 1]}`, file);
    text = rewrite(text, /^http_port: \d+$/m, '', file);
    text = rewrite(text, /^(\s*)listen: .*$/m, `$1listen: 127.0.0.1:${routePorts[id - 1]}`, file);
    text = rewrite(text, /nats:\/\/nats-(\d):\d+/g, 'nats://127.0.0.1:ROUTE$1', file).replace(
      /ROUTE(\d)/g,
      (_, n: string) => String(routePorts[Number(n) - 1]),
    );
    text = rewrite(
      text,
      /^(\s*)store_dir:.*$/m,
      `$1store_dir: ${JSON.stringify(path.join(dir, `js-${id}`))}`,
      file,
    );
    await writeFile(path.join(dir, 'cluster', file), text);
    nodes.push(node(`nats-${id}`, dir, path.join(dir, 'cluster', file), clientPorts[id - 1]!));
  }
  await Promise.all(nodes.map((n) => n.start()));
  return {
    nodes,
    urls: nodes.map((n) => n.url).join(','),
    async stop() {
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface UserConnection {
  nc: NatsConnection;
  /** `Permissions Violation for …` messages the server sent this connection, in order. */
  violations: string[];
}

/** Connects as one of auth.conf's users, with that user's inbox prefix, recording refusals. */
export async function connectAs(
  servers: string | string[],
  user: NatsUser,
  opts: { inboxPrefix?: string } = {},
): Promise<UserConnection> {
  const nc = await connect({
    servers,
    user,
    pass: TEST_NATS_PASSWORDS[user],
    inboxPrefix: opts.inboxPrefix ?? natsInboxPrefix(user),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  const violations: string[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error' && /permissions violation/i.test(s.error.message)) {
        violations.push(s.error.message);
      }
    }
  })();
  return { nc, violations };
}

let barrierSerial = 0;

/**
 * The refusals the server sent for what this connection did since `from` (an index into
 * `violations`). The server answers in order on one connection and its refusals reach the
 * status stream asynchronously, so a publish no user may make marks the end: once its refusal
 * is recorded, every earlier one is too.
 */
export async function refusalsSince(c: UserConnection, from: number): Promise<string[]> {
  const marker = `respawn-test.barrier.${++barrierSerial}`;
  const endOf = (v: string): boolean => v.includes(`Publish to "${marker}"`);
  c.nc.publish(marker);
  await c.nc.flush();
  const deadline = Date.now() + 5_000;
  while (!c.violations.some(endOf)) {
    if (Date.now() > deadline) throw new Error(`no refusal of ${marker} within 5 s`);
    await sleep(5);
  }
  const end = c.violations.findIndex(endOf);
  return c.violations.slice(from, end);
}
