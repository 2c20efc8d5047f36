/**
 * One actor worker hosting session, billing and alloc with the local run's configurations
 * (admission on, billing answering it, short timers when asked). It composes the runtime's
 * factories itself because `runWorker` (actors/main.ts) always uses the default configs.
 */
import type { Knex } from 'knex';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { ActorKinds, ensureTopology } from '../../contracts/index.ts';
import { createAllocatorActor, type AllocatorConfig } from '../../actors/allocator/index.ts';
import { createBillingActor, type BillingConfig } from '../../actors/billing/index.ts';
import { createSessionActor, type SessionConfig } from '../../actors/session/index.ts';
import {
  checkPartitionMapping,
  createWorker,
  migrate,
  openDatabase,
  systemClock,
  type ActorDefinition,
} from '../../actors/runtime/index.ts';

export interface LocalWorkerOptions {
  natsUrl: string;
  databaseUrl: string;
  log: Logger;
  session: SessionConfig;
  billing: BillingConfig;
  allocator: AllocatorConfig;
  /** How often due durable timers are looked for. */
  timerPollMs?: number;
}

export interface LocalWorker {
  /** The worker's database (read-only uses beside the actors: the disk reconciler). */
  knex: Knex;
  stop(): Promise<void>;
}

export const LOCAL_ACTOR_KINDS = [ActorKinds.session, ActorKinds.billing, ActorKinds.alloc];

export async function startLocalWorker(opts: LocalWorkerOptions): Promise<LocalWorker> {
  const actors = [
    createSessionActor(opts.session),
    createBillingActor(opts.billing),
    createAllocatorActor(opts.allocator),
  ] as unknown as ActorDefinition[];
  const nc = await connect({
    servers: opts.natsUrl,
    name: 'respawn-local-actors',
    maxReconnectAttempts: -1,
    noAsyncTraces: true, // see contracts/nats-client.ts
  });
  try {
    await checkPartitionMapping(nc);
    await ensureTopology(await jetstreamManager(nc), { consumersFor: LOCAL_ACTOR_KINDS });
  } catch (err) {
    await nc.close();
    throw err;
  }
  const db = await openDatabase({
    url: opts.databaseUrl,
    log: opts.log,
    migrations: actors.flatMap((a) => a.migrations),
  });
  const applied = await migrate(db);
  if (applied.length > 0) opts.log.info({ applied }, 'migrations applied');
  const worker = createWorker({
    nc,
    db,
    log: opts.log,
    clock: systemClock,
    actors,
    ...(opts.timerPollMs === undefined ? {} : { timerPollMs: opts.timerPollMs }),
  });
  await worker.start();
  return {
    knex: db.knex,
    async stop() {
      await worker.stop();
      await nc.drain();
      await db.close();
    },
  };
}
