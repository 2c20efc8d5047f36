/**
 * The actors' worker process: `node --import tsx actors/main.ts`. Connects, checks the NATS
 * mapping, converges streams and consumers, migrates, and runs the configured actor kinds
 * until SIGTERM or SIGINT, then shuts down gracefully.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { ensureTopology, type ActorKind } from '../contracts/index.ts';
import { createBillingActor, loadBillingConfig } from './billing/index.ts';
import { allocatorActor } from './allocator/index.ts';
import { demoActor } from './demo/index.ts';
import { createSessionActor, defaultSessionConfig } from './session/index.ts';
import { loadWorkerConfig, type WorkerConfig } from './config.ts';
import { createRootLogger } from './log.ts';
import {
  checkPartitionMapping,
  createWorker,
  migrate,
  offsetClock,
  openDatabase,
  systemClock,
  type ActorDefinition,
} from './runtime/index.ts';

/** Builds each hosted actor with its configuration (validated from the environment). */
function buildActor(kind: ActorKind, cfg: WorkerConfig, env: NodeJS.ProcessEnv): ActorDefinition {
  switch (kind) {
    case 'demo':
      return demoActor as unknown as ActorDefinition;
    case 'session':
      return createSessionActor({
        ...defaultSessionConfig,
        region: cfg.RESPAWN_REGION,
        requireAdmission: cfg.RESPAWN_SESSION_ADMISSION,
      }) as unknown as ActorDefinition;
    case 'alloc':
      return allocatorActor as unknown as ActorDefinition;
    case 'billing':
      return createBillingActor(loadBillingConfig(env)) as unknown as ActorDefinition;
  }
}

export interface RunningWorker {
  stop(): Promise<void>;
}

export async function runWorker(
  cfg: WorkerConfig,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningWorker> {
  const actors = cfg.RESPAWN_ACTORS.map((k) => buildActor(k, cfg, env));
  const nc = await connect({
    servers: cfg.NATS_URL,
    name: 'respawn-actors',
    maxReconnectAttempts: -1,
  });
  await checkPartitionMapping(nc);
  await ensureTopology(await jetstreamManager(nc), { consumersFor: cfg.RESPAWN_ACTORS });
  const db = await openDatabase({
    url: cfg.DATABASE_URL,
    log,
    poolMax: cfg.RESPAWN_DB_POOL,
    migrations: actors.flatMap((a) => a.migrations),
  });
  if (cfg.RESPAWN_MIGRATE) {
    const applied = await migrate(db);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
  }
  const clock =
    cfg.RESPAWN_CLOCK_OFFSET_MS === 0 ? systemClock : offsetClock(cfg.RESPAWN_CLOCK_OFFSET_MS);
  const worker = createWorker({
    nc,
    db,
    log,
    clock,
    actors,
    maxBatch: cfg.RESPAWN_MAX_BATCH,
    concurrency: cfg.RESPAWN_CONCURRENCY,
    maxAttempts: cfg.RESPAWN_MAX_ATTEMPTS,
  });
  await worker.start();
  return {
    async stop() {
      await worker.stop();
      await nc.drain();
      await db.close();
    },
  };
}

async function main(): Promise<void> {
  let cfg: WorkerConfig;
  let log: Logger = createRootLogger({ level: 'info', name: 'respawn-actors' });
  try {
    cfg = loadWorkerConfig(process.env);
  } catch (err) {
    log.fatal({ err }, 'cannot start');
    process.exit(2);
  }
  log = createRootLogger({ level: cfg.LOG_LEVEL, name: 'respawn-actors' });
  const running = await runWorker(cfg, log);
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    running
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    createRootLogger({ level: 'info', name: 'respawn-actors' }).fatal({ err }, 'worker failed');
    process.exit(1);
  });
}
