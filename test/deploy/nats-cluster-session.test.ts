/**
 * A play session through the three-node cluster (deploy/nats/cluster, with its users): two
 * production workers (actors/main.ts as user `actors`, NATS_URL = every node, streams R3)
 * host the session and allocator actors, the agent ingress router and the Azure effects
 * runner against the ARM fake. Players press Play (as another service would, user
 * `services`); while their VMs are being created the node leading the session command stream
 * is killed. Every session still gets exactly one VM and reaches ready once its agent reports
 * (the gateway's user publishes the reports, as the gateway does after checking the token).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  AgentReport,
  SessionStart,
  cmdSubject,
  ingressSubject,
  natsServers,
} from '../../contracts/index.ts';
import { migrate, openDatabase, type Database } from '../../actors/runtime/index.ts';
import { startArmFake, type ArmFake } from '../../deploy/fakes/arm/index.ts';
import type { SessionState } from '../../actors/session/index.ts';
import { createTestDatabase, type TestDatabase } from '../harness/index.ts';
import { eventually, exited, quietLog } from '../support/runtime-env.ts';
import {
  TEST_NATS_PASSWORDS,
  connectAs,
  startCluster,
  type NatsCluster,
  type UserConnection,
} from './nats-servers.ts';

const PLAYERS = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
const SESSION_STREAM = 'RESPAWN_SESSION_CMD';

let cluster: NatsCluster;
let database: TestDatabase;
let db: Database;
let arm: ArmFake;
let operator: UserConnection;
let services: UserConnection;
let gateway: UserConnection;
const workers: ChildProcess[] = [];
let stopping = false;

function workerEnv(migrateToo: boolean): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NATS_URL: cluster.urls,
    NATS_USER: 'actors',
    NATS_PASSWORD: TEST_NATS_PASSWORDS.actors,
    RESPAWN_STREAM_REPLICAS: '3',
    DATABASE_URL: database.url,
    RESPAWN_ACTORS: 'session,alloc',
    RESPAWN_MIGRATE: migrateToo ? 'true' : 'false',
    RESPAWN_SESSION_ADMISSION: 'false',
    RESPAWN_INGRESS: 'agent',
    RESPAWN_AZURE_EFFECTS: 'true',
    AZURE_SUBSCRIPTION_ID: arm.subscriptionId,
    AZURE_RESOURCE_GROUP: arm.resourceGroup,
    AZURE_SSH_PUBLIC_KEY: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test',
    AZURE_ARM_ENDPOINT: arm.url,
    AZURE_ARM_CA_FILE: arm.caCertPath,
    RESPAWN_HTTP_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
  };
}

/** Kept running as a deployment's restart policy would (see nats-cluster-play.test.ts). */
function supervisedWorker(migrateToo: boolean): void {
  const w = spawn(process.execPath, ['--import', 'tsx', 'actors/main.ts'], {
    env: workerEnv(migrateToo),
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  workers.push(w);
  w.once('exit', () => {
    if (!stopping) supervisedWorker(false);
  });
}

async function jetstreamReady(): Promise<JetStreamManager> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await jetstreamManager(operator.nc, { timeout: 2_000 });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** A publish that survives a leader election: the same Nats-Msg-Id until JetStream acks. */
async function publishAcked(
  conn: UserConnection,
  subject: string,
  data: Uint8Array,
  msgID: string,
): Promise<void> {
  const js = jetstream(conn.nc);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await js.publish(subject, data, { msgID, timeout: 2_000 });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function session(player: string): Promise<SessionState | undefined> {
  const rows = await db
    .knex('rt_state')
    .select<{ state: SessionState }[]>('state')
    .where({ actor: 'session', key: player });
  return rows[0]?.state;
}

beforeAll(async () => {
  cluster = await startCluster();
  database = await createTestDatabase();
  db = await openDatabase({ url: database.url, log: quietLog() });
  await migrate(db);
  arm = await startArmFake({
    subscriptionId: '00000000-0000-0000-0000-000000000009',
    resourceGroup: 'respawn-cluster',
    location: 'centralindia',
    quotas: { lowPriorityCores: 64, standardNCASv3_T4Family: 64, cores: 200 },
    lroPolls: 2,
  });
  operator = await connectAs(natsServers(cluster.urls), 'operator');
  services = await connectAs(natsServers(cluster.urls), 'services');
  gateway = await connectAs(natsServers(cluster.urls), 'gateway');
}, 60_000);

afterAll(async () => {
  stopping = true;
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await Promise.all(workers.map((w) => exited(w)));
  for (const c of [operator, services, gateway]) await c?.nc.close();
  await arm?.stop();
  await db?.close();
  await database?.drop();
  await cluster?.stop();
});

it('plays sessions to ready, one VM each, while the session stream’s leader is killed', async () => {
  const jsm = await jetstreamReady();
  supervisedWorker(true);
  await eventually(
    'the first worker converged the topology',
    async () =>
      (await jsm.consumers.info('RESPAWN_ALLOC_CMD', 'alloc-p63').catch(() => null)) !== null &&
      (await jsm.consumers.info(SESSION_STREAM, 'session-p63').catch(() => null)) !== null,
    60_000,
  );
  supervisedWorker(false);

  for (const p of PLAYERS) {
    await publishAcked(
      services,
      cmdSubject(ActorKinds.session, p, 'start'),
      SessionStart.encode({ requestedBy: 'player' }),
      `cluster-start-${p}`,
    );
  }
  // Mid-session: once the first VM is being created, the session stream's leader dies.
  await eventually(
    'a VM is being created',
    () => Promise.resolve(arm.state.vms().length > 0),
    60_000,
  );
  const leader = (await jsm.streams.info(SESSION_STREAM)).cluster?.leader;
  const victim = cluster.nodes.find((n) => n.name === leader);
  expect(victim, `leader ${String(leader)}`).toBeDefined();
  await victim!.kill('SIGKILL');

  const vmOf = new Map<string, string>();
  await eventually(
    'every session has its VM up',
    async () => {
      for (const p of PLAYERS) {
        const s = await session(p);
        if (s?.vmName !== undefined && arm.state.vm(s.vmName)?.provisioningState === 'Succeeded')
          vmOf.set(p, s.vmName);
      }
      return vmOf.size === PLAYERS.length;
    },
    90_000,
  );
  // The agents report ready (what the gateway stores after checking their tokens).
  for (const [p, vmName] of vmOf) {
    const s = (await session(p))!;
    await publishAcked(
      gateway,
      ingressSubject('agent'),
      AgentReport.encode({
        id: `ready-${p}`,
        vmName,
        sessionId: s.sessionId!,
        playerId: p,
        kind: 'ready',
        at: new Date().toISOString(),
        host: '10.0.0.9',
        port: 47989,
        pin: '2468',
      }),
      `agent-ready-${p}`,
    );
  }
  await eventually(
    'every session is ready',
    async () => {
      for (const p of PLAYERS) if ((await session(p))?.phase !== 'ready') return false;
      return true;
    },
    60_000,
  );
  // Exactly one VM per session, none left over.
  const sessionVms = arm.state.vms().filter((v) => v.tags.purpose === 'respawn-session');
  expect(sessionVms.map((v) => v.tags.session).sort()).toEqual(PLAYERS.map((p) => `${p}-1`).sort());
  expect((await jsm.streams.info(SESSION_STREAM)).cluster?.leader).not.toBe(victim!.name);
}, 240_000);
