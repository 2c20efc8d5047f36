/**
 * deploy/nats/cluster/ as deployed: three nodes started from the committed files (with their
 * users, auth.conf) on loopback ports. Two worker processes (actors/main.ts, user `actors`,
 * NATS_URL = every node, RESPAWN_STREAM_REPLICAS=3) handle demo commands another service
 * publishes (user `services`) for many keys, while the node leading the command stream is
 * killed with SIGKILL mid-way. Nothing is lost and nothing is doubled: every command is stored
 * once and handled exactly once, in order per key, and each key's state version equals its
 * count.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoAdd, Streams, natsServers } from '../../contracts/index.ts';
import { migrate, openDatabase, type Database } from '../../actors/runtime/index.ts';
import { createTestDatabase, type TestDatabase } from '../harness/index.ts';
import { demoStates, eventually, exited, quietLog } from '../support/runtime-env.ts';
import {
  TEST_NATS_PASSWORDS,
  connectAs,
  startCluster,
  type NatsCluster,
  type UserConnection,
} from './nats-servers.ts';

const KEYS = 60;
const PER_KEY = 20; // 1,200 commands
const KILL_AFTER_ROUND = 6;
const STREAM = 'RESPAWN_DEMO_CMD';

let cluster: NatsCluster;
let database: TestDatabase;
let db: Database;
const workers: ChildProcess[] = [];
let operator: UserConnection;
let services: UserConnection;

let stopping = false;
let restarts = 0;

/**
 * A worker process kept running as a deployment's restart policy would: a worker that exits
 * (a JetStream API call timing out at start while the cluster is busy ends the process) is
 * started again. Exactly-once must hold across that too.
 */
function supervisedWorker(): void {
  const w = spawnWorker();
  workers.push(w);
  w.once('exit', () => {
    if (stopping) return;
    restarts++;
    supervisedWorker();
  });
}

function spawnWorker(): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'actors/main.ts'], {
    env: {
      ...process.env,
      NATS_URL: cluster.urls,
      NATS_USER: 'actors',
      NATS_PASSWORD: TEST_NATS_PASSWORDS.actors,
      RESPAWN_STREAM_REPLICAS: '3',
      DATABASE_URL: database.url,
      RESPAWN_ACTORS: 'demo',
      RESPAWN_MIGRATE: 'false',
      RESPAWN_HTTP_PORT: '0',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/** JetStream answers once the cluster has elected its meta leader. */
async function jetstreamReady(): Promise<JetStreamManager> {
  let last: unknown;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      return await jetstreamManager(operator.nc, { timeout: 2_000 });
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`JetStream not ready on the cluster: ${String(last)}`);
}

beforeAll(async () => {
  cluster = await startCluster();
  database = await createTestDatabase();
  db = await openDatabase({ url: database.url, log: quietLog() });
  await migrate(db);
  operator = await connectAs(natsServers(cluster.urls), 'operator');
  services = await connectAs(natsServers(cluster.urls), 'services');
}, 60_000);

afterAll(async () => {
  stopping = true;
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await Promise.all(workers.map((w) => exited(w)));
  await operator?.nc.close();
  await services?.nc.close();
  await db?.close();
  await database?.drop();
  await cluster?.stop();
});

/** Publishes one add, again with the same Nats-Msg-Id until JetStream acks it. */
async function publishAdd(key: string, n: number): Promise<void> {
  const js = jetstream(services.nc);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await js.publish(`respawn.demo.${key}.cmd.add`, DemoAdd.encode({ n, amount: 1 }), {
        msgID: `cluster-${key}-${n}`,
        timeout: 2_000,
      });
      return;
    } catch (err) {
      // While the stream elects a new leader the publish times out or finds no responder;
      // a retry with the same id is stored at most once (de-duplication window).
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function handled(): Promise<number> {
  const r = await db.knex('rt_inbox').count<{ c: string }[]>({ c: '*' }).where({ actor: 'demo' });
  return Number(r[0]?.c ?? 0);
}

describe('three-node cluster (deploy/nats/cluster)', () => {
  it('loses and doubles nothing when the command stream’s leader is killed mid-way', async () => {
    const jsm = await jetstreamReady();
    // The deployment's migrate step: one worker converges the topology before the others
    // start, as compose's `migrate` service does.
    supervisedWorker();
    await eventually(
      'the first worker created the streams and consumers',
      async () => (await jsm.consumers.info(STREAM, 'demo-p63').catch(() => null)) !== null,
      45_000,
    );
    supervisedWorker();
    for (const name of [STREAM, Streams.events.name, Streams.out.name, Streams.dlq.name]) {
      const info = await jsm.streams.info(name);
      expect(info.config.num_replicas, name).toBe(3);
      expect(info.cluster?.replicas?.length, name).toBe(2);
    }

    const keys = Array.from({ length: KEYS }, (_, k) => `ck${k}`);
    let killed: string | undefined;
    for (let n = 1; n <= PER_KEY; n++) {
      if (n === KILL_AFTER_ROUND + 1) {
        const leader = (await jsm.streams.info(STREAM)).cluster?.leader;
        const victim = cluster.nodes.find((x) => x.name === leader);
        if (victim === undefined) throw new Error(`no node is the leader (${String(leader)})`);
        await victim.kill('SIGKILL');
        killed = victim.name;
      }
      // One round: every key's n-th add, side by side; a key's adds stay in order.
      await Promise.all(keys.map((k) => publishAdd(k, n)));
    }
    expect(killed).toBeDefined();
    expect(cluster.nodes.filter((x) => x.running()).map((x) => x.name)).not.toContain(killed);

    await eventually(
      `all ${KEYS * PER_KEY} commands handled`,
      async () => (await handled()) >= KEYS * PER_KEY,
      45_000,
    );
    const info = await jsm.streams.info(STREAM);
    expect(info.state.messages).toBe(KEYS * PER_KEY);
    expect(info.cluster?.leader).not.toBe(killed);
    expect(await handled()).toBe(KEYS * PER_KEY);
    const states = await demoStates(db);
    expect(states.size).toBe(KEYS);
    const expected = Array.from({ length: PER_KEY }, (_, i) => i + 1);
    for (const key of keys) {
      const s = states.get(key);
      expect({ key, seen: s?.seen, outOfOrder: s?.outOfOrder, count: s?.count }).toEqual({
        key,
        seen: expected,
        outOfOrder: 0,
        count: PER_KEY,
      });
      expect(s?.version, key).toBe(PER_KEY);
    }
    if (restarts > 0) console.warn(`cluster test: ${restarts} worker restart(s)`);
  }, 120_000);
});
