/**
 * The actors' worker process: `node --import tsx actors/main.ts`. Connects, checks the NATS
 * mapping, converges streams and consumers, migrates, and runs the configured actor kinds
 * until SIGTERM or SIGINT, then shuts down gracefully.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import {
  NatsUsers,
  ensureTopology,
  loadTelemetryConfig,
  natsConnectOptions,
  startTelemetry,
  type ActorKind,
  type TelemetryConfig,
  exitOnSignals,
  collectProcessMetrics,
} from '../contracts/index.ts';
import { createBillingActor, loadBillingConfig } from './billing/index.ts';
import { createAllocatorActor } from './allocator/index.ts';
import { demoActor } from './demo/index.ts';
import { createSessionActor } from './session/index.ts';
import {
  allocatorConfigFrom,
  loadWorkerConfig,
  sessionConfigFrom,
  type WorkerConfig,
} from './config.ts';
import { startWorkerHttp, type WorkerHttp } from './http.ts';
import { createRootLogger } from './log.ts';
import { startRoles } from './roles.ts';
import { followReplayClock } from './runtime/clock.ts';
import { createRuntimeMetrics } from './runtime/metrics.ts';
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
      return createSessionActor(sessionConfigFrom(cfg)) as unknown as ActorDefinition;
    case 'alloc':
      return createAllocatorActor(allocatorConfigFrom(cfg)) as unknown as ActorDefinition;
    case 'billing':
      return createBillingActor(loadBillingConfig(env)) as unknown as ActorDefinition;
  }
}

/**
 * Per JetStream API call while converging streams and consumers at start; each call is
 * retried (contracts' retryJsApi) for up to a minute, so a request lost to a leader change on a
 * cluster costs this long, not a minute.
 */
const TOPOLOGY_TIMEOUT_MS = 10_000;

export interface RunningWorker {
  stop(): Promise<void>;
}

export async function runWorker(
  cfg: WorkerConfig,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningWorker> {
  const actors = cfg.RESPAWN_ACTORS.map((k) => buildActor(k, cfg, env));
  const nc = await connect(natsConnectOptions(cfg, NatsUsers.actors, 'respawn-actors'));
  await checkPartitionMapping(nc);
  log.debug({ actors: cfg.RESPAWN_ACTORS }, 'converging streams and consumers');
  // On a cluster each create goes through JetStream's consensus (64 consumers per kind at
  // once): far slower than the client's default 5 s per API call on a busy host.
  await ensureTopology(await jetstreamManager(nc, { timeout: TOPOLOGY_TIMEOUT_MS }), {
    consumersFor: cfg.RESPAWN_ACTORS,
    windows: cfg.RESPAWN_PARTITION_WINDOWS,
    replicas: cfg.RESPAWN_STREAM_REPLICAS,
  });
  log.debug('streams and consumers converged');
  const db = await openDatabase({
    url: cfg.DATABASE_URL,
    log,
    poolMax: cfg.RESPAWN_DB_POOL,
    migrations: actors.flatMap((a) => a.migrations),
  });
  if (cfg.RESPAWN_MIGRATE || cfg.RESPAWN_MIGRATE_ONLY) {
    const applied = await migrate(db);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
  }
  if (cfg.RESPAWN_MIGRATE_ONLY) {
    await nc.drain();
    await db.close();
    return { stop: () => Promise.resolve() };
  }
  // The replay clock follows on the worker's own connection (ordering: actors/runtime/clock.ts).
  const replayClock =
    cfg.RESPAWN_CLOCK === 'replay' ? await followReplayClock({ nc, log }) : undefined;
  const clock =
    replayClock ??
    (cfg.RESPAWN_CLOCK_OFFSET_MS === 0 ? systemClock : offsetClock(cfg.RESPAWN_CLOCK_OFFSET_MS));
  const registry = new Registry();
  collectProcessMetrics(registry, 'respawn_actors_');
  const worker = createWorker({
    nc,
    db,
    log,
    clock,
    actors,
    maxBatch: cfg.RESPAWN_MAX_BATCH,
    concurrency: cfg.RESPAWN_CONCURRENCY,
    maxAttempts: cfg.RESPAWN_MAX_ATTEMPTS,
    metrics: createRuntimeMetrics(registry),
  });
  await worker.start();
  const roles = await startRoles(cfg, nc, log, { knex: db.knex, registry });
  let http: WorkerHttp | undefined;
  if (cfg.RESPAWN_HTTP_PORT !== 0) {
    try {
      http = await startWorkerHttp({
        nc,
        knex: db.knex,
        registry,
        log,
        port: cfg.RESPAWN_HTTP_PORT,
      });
    } catch (err) {
      // Handling messages matters more than being scraped (several workers on one host share
      // the default port); the failing probes make the missing server visible in deployment.
      log.error({ err, port: cfg.RESPAWN_HTTP_PORT }, 'worker http not started');
    }
  }
  return {
    async stop() {
      await http?.close();
      for (const r of roles) await r.stop();
      await worker.stop();
      replayClock?.stop();
      await nc.drain();
      await db.close();
    },
  };
}

async function main(): Promise<void> {
  let cfg: WorkerConfig;
  let telemetryConfig: TelemetryConfig;
  let log: Logger = createRootLogger({ level: 'info', name: 'respawn-actors' });
  try {
    cfg = loadWorkerConfig(process.env);
    telemetryConfig = loadTelemetryConfig(process.env, 'respawn-actors');
  } catch (err) {
    log.fatal({ err }, 'cannot start');
    process.exit(2);
  }
  log = createRootLogger({ level: cfg.LOG_LEVEL, name: 'respawn-actors' });
  // Before the database opens, so the PostgreSQL instrumentation sees the driver load.
  const telemetry = await startTelemetry({ config: telemetryConfig, log });
  const running = await runWorker(cfg, log);
  if (cfg.RESPAWN_MIGRATE_ONLY) {
    log.info('migrations done; exiting (RESPAWN_MIGRATE_ONLY)');
    process.exit(0);
  }
  exitOnSignals(log, () => running.stop().then(() => telemetry.shutdown()));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    createRootLogger({ level: 'info', name: 'respawn-actors' }).fatal({ err }, 'worker failed');
    process.exit(1);
  });
}
