/**
 * A whole Respawn test deployment on the replay clock, for the record-and-replay tests: a
 * private nats-server, a fresh database, one worker hosting session, billing and alloc whose
 * clock follows `respawn.clock.now` (on the worker's own connection, as `actors/main.ts` does
 * with RESPAWN_CLOCK=replay), the three ingress routers, the ARM fake (seeded) with the real
 * Azure SDK and the allocator's effects runner, and the Razorpay fake with the gateway's
 * Razorpay effects runner (the Razorpay fake reads time from the replay clock, for link expiry). No agent simulator: agent reports come from the script or the
 * recording. The probe and clock are what `replay --step --clock --database` would use.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import knex, { type Knex } from 'knex';
import type { Logger } from 'pino';
import { ActorKinds, ensureTopology } from '../../contracts/index.ts';
import { createAllocatorActor, defaultAllocatorConfig } from '../../actors/allocator/index.ts';
import { createAzureEffectsRunner } from '../../actors/allocator/effects.ts';
import {
  createAzureVmProvider,
  staticTokenCredential,
} from '../../actors/allocator/azure/index.ts';
import { createBillingActor } from '../../actors/billing/index.ts';
import { createSessionActor, defaultSessionConfig } from '../../actors/session/index.ts';
import {
  createWorker,
  migrate,
  openDatabase,
  type ActorDefinition,
  type Database,
} from '../../actors/runtime/index.ts';
import { followReplayClock, type FollowedClock } from '../../actors/runtime/clock.ts';
import { createRazorpayClient, createRazorpayEffects } from '../../gateway/razorpay/index.ts';
import { startArmFake, type ArmFake } from '../../deploy/fakes/arm/index.ts';
import { startRazorpayFake, type RazorpayFake } from '../../deploy/fakes/razorpay/index.ts';
import { startIngress } from '../../deploy/local/ingress.ts';
import { natsReplayClock, type ReplayClock } from '../../deploy/replay/clock.ts';
import { deploymentIdleProbe, type IdleProbe } from '../../deploy/replay/idle.ts';
import {
  createTestDatabase,
  startNats,
  type NatsServerHandle,
  type TestDatabase,
} from '../harness/index.ts';
import { quietLog } from '../support/runtime-env.ts';
import { TEST_SSH_KEY } from '../support/cloud-env.ts';

export const REGION = 'centralindia';
export const RAZORPAY_KEY = { keyId: 'rzp_test_Replay00000001', keySecret: 'replay-key-secret' };
export const RAZORPAY_WEBHOOK_SECRET = 'replay-webhook-secret';
/** Same seed in the recorded run and the replay: the fake cloud hands out the same ids. */
export const ARM_SEED = 7;
/** Short enough that idle players are stopped within the scripted period. */
export const SESSION_CONFIG = {
  ...defaultSessionConfig,
  region: REGION,
  requireAdmission: true,
  idleTimeoutMs: 6 * 60_000,
  idleWarningMs: 60_000,
};

export interface Deployment {
  nats: NatsServerHandle;
  database: TestDatabase;
  /** The driver's connection (publishing, reading streams). */
  nc: NatsConnection;
  jsm: JetStreamManager;
  db: Database;
  knex: Knex;
  arm: ArmFake;
  razorpay: RazorpayFake;
  /** What the workers read time from. */
  workerClock: FollowedClock;
  /** What a replay moves. */
  clock: ReplayClock;
  probe: IdleProbe;
  log: Logger;
  stop(): Promise<void>;
}

export async function startDeployment(): Promise<Deployment> {
  const log = quietLog();
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const nats = await startNats();
    stops.push(() => nats.stop());
    const database = await createTestDatabase();
    stops.push(() => database.drop());
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1 });
    stops.push(() => nc.close());
    const jsm = await jetstreamManager(nc);
    await ensureTopology(jsm, {
      consumersFor: [ActorKinds.session, ActorKinds.billing, ActorKinds.alloc],
    });
    const actors = [
      createSessionActor(SESSION_CONFIG),
      createBillingActor({}),
      createAllocatorActor({ ...defaultAllocatorConfig }),
    ] as unknown as ActorDefinition[];
    const db = await openDatabase({
      url: database.url,
      log,
      migrations: actors.flatMap((a) => a.migrations),
    });
    stops.push(() => db.close());
    await migrate(db);
    const probeDb = knex({ client: 'pg', connection: database.url, pool: { min: 0, max: 2 } });
    stops.push(() => probeDb.destroy());

    const workerNc = await connect({ servers: nats.url, maxReconnectAttempts: -1 });
    stops.push(() => workerNc.close());
    const workerClock = await followReplayClock({ nc: workerNc, log });
    stops.push(() => Promise.resolve(workerClock.stop()));
    const worker = createWorker({
      nc: workerNc,
      db,
      log,
      clock: workerClock,
      actors,
      timerPollMs: 50,
    });
    await worker.start();
    stops.push(() => worker.stop());

    const ingress = await startIngress({ nc, log, topupPresetsPaise: [10_000, 25_000] });
    stops.push(() => ingress.stop());

    const arm = await startArmFake({
      subscriptionId: '00000000-0000-0000-0000-00000000000a',
      resourceGroup: 'respawn-replay',
      location: REGION,
      quotas: { lowPriorityCores: 100_000, standardNCASv3_T4Family: 100_000, cores: 100_000 },
      lroPolls: 1,
      seed: ARM_SEED,
    });
    stops.push(() => arm.stop());
    const runner = createAzureEffectsRunner({
      js: jetstream(nc),
      jsm,
      provider: createAzureVmProvider({
        subscriptionId: arm.subscriptionId,
        resourceGroup: arm.resourceGroup,
        location: REGION,
        credential: staticTokenCredential(),
        endpoint: arm.url,
        caCert: arm.caCert,
        pollIntervalMs: 10,
        log,
      }),
      log,
      config: {
        region: REGION,
        diskImageId: undefined,
        diskSizeGb: 256,
        vmImage: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest',
        admin: { username: 'respawn', sshPublicKey: TEST_SSH_KEY },
        quotaNames: ['lowPriorityCores', 'standardNCASv3_T4Family'],
        concurrency: 16,
      },
    });
    await runner.start();
    stops.push(() => runner.stop());

    const razorpay = await startRazorpayFake({
      ...RAZORPAY_KEY,
      webhookSecret: RAZORPAY_WEBHOOK_SECRET,
      // Link expiry is checked against the deployment's (recorded) time, as billing sets it.
      now: () => workerClock.now(),
    });
    stops.push(() => razorpay.stop());
    const effects = createRazorpayEffects({
      nc,
      payments: createRazorpayClient({ ...RAZORPAY_KEY, baseUrl: razorpay.url, timeoutMs: 5_000 }),
      log,
      backoff: { baseMs: 50, maxMs: 200 },
    });
    await effects.start();
    stops.push(() => effects.stop());

    return {
      nats,
      database,
      nc,
      jsm,
      db,
      knex: probeDb,
      arm,
      razorpay,
      workerClock,
      clock: await natsReplayClock(nc),
      probe: deploymentIdleProbe({ jsm, knex: probeDb }),
      log,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
