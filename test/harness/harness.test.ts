import net from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  assertServices,
  connectPostgres,
  createTestDatabase,
  redisPrefix,
  startNats,
  type NatsServerHandle,
  type PgClient,
  type TestDatabase,
} from './index.ts';

// Written out here rather than imported so the test checks the server against an independent
// implementation of the partition function.
function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

describe('nats harness', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection | undefined;

  beforeAll(async () => {
    server = await startNats();
  });
  afterEach(async () => {
    await nc?.close();
    nc = undefined;
  });
  afterAll(async () => {
    // Optional chaining: beforeAll may have failed before assigning it.
    await server?.stop();
  });

  it('accepts TCP connections on its port', async () => {
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    const socket = net.connect({ host: '127.0.0.1', port: server.port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.destroy();
  });

  it('maps command subjects to their key partition', async () => {
    nc = await connect({ servers: server.url });
    const sub = nc.subscribe('respawn.demo.abc.cmd.ping.*', { max: 1, timeout: 5_000 });
    // The subscription must reach the server before the publish, or the message is dropped.
    await nc.flush();
    nc.publish('respawn.demo.abc.cmd.ping');
    const subjects: string[] = [];
    for await (const m of sub) subjects.push(m.subject);
    expect(subjects).toEqual([`respawn.demo.abc.cmd.ping.${fnv1a32('abc') % 64}`]);
  });

  it('keeps the JetStream store across restart()', async () => {
    nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'T', subjects: ['t.>'] });
    await jetstream(nc).publish('t.one', 'hello');
    const pidBefore = server.pid;
    // Closed first so the client does not race the server's shutdown with reconnects.
    await nc.close();

    await server.restart();
    expect(server.pid).not.toBe(pidBefore);

    nc = await connect({ servers: server.url });
    const info = await (await jetstreamManager(nc)).streams.info('T');
    expect(info.state.messages).toBe(1);
  });
});

describe('postgres harness', () => {
  let db: TestDatabase | undefined;
  let client: PgClient | undefined;

  afterEach(async () => {
    await client?.end();
    client = undefined;
    await db?.drop();
    db = undefined;
  });

  async function databaseExists(name: string): Promise<boolean> {
    const admin = await connectPostgres('postgres');
    try {
      const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      return rows.length === 1;
    } finally {
      await admin.end();
    }
  }

  it('creates a usable database and drop() removes it', async () => {
    db = await createTestDatabase();
    expect(db.name).toMatch(new RegExp(`^respawn_t_[0-9a-f]{8}_${process.pid}$`));
    expect(db.url).toBe(`postgres://postgres@127.0.0.1:5432/${db.name}`);

    client = await connectPostgres(db.url);
    await client.query('CREATE TABLE t (id int PRIMARY KEY)');
    await client.query('INSERT INTO t VALUES (1)');
    const { rows } = await client.query('SELECT id FROM t');
    expect(rows).toEqual([{ id: 1 }]);
    await client.end();
    client = undefined;

    expect(await databaseExists(db.name)).toBe(true);
    await db.drop();
    expect(await databaseExists(db.name)).toBe(false);
    db = undefined;
  });
});

describe('services', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const key of ['PGPORT', 'REDIS_URL', 'NATS_SERVER_BIN']) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });

  it('passes when every service is up', async () => {
    await expect(assertServices()).resolves.toBeUndefined();
  });

  it('names every missing service, with how to start it, in one error', async () => {
    process.env.PGPORT = '1';
    process.env.REDIS_URL = 'redis://127.0.0.1:1';
    process.env.NATS_SERVER_BIN = '/nonexistent/nats-server';
    const error = await assertServices().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toContain('PostgreSQL');
    expect(message).toContain('pg_ctlcluster --skip-systemctl-redirect');
    expect(message).toContain('Redis');
    expect(message).toContain('redis-server --daemonize yes');
    expect(message).toContain('nats-server');
    expect(message).toContain('apt-get install nats-server');
  });

  it('hands out distinct Redis key prefixes', () => {
    const a = redisPrefix();
    expect(a).toMatch(/^respawn:t:[0-9a-f]+:$/);
    expect(redisPrefix()).not.toBe(a);
  });
});
