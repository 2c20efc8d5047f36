/**
 * The gateway process: `node --import tsx gateway/main.ts`. Validates the environment,
 * connects to NATS (converging the streams) and Redis, serves the webhooks, health and
 * metrics, takes Telegram updates by webhook or long polling, and carries out Telegram sends,
 * until SIGTERM or SIGINT, then shuts down gracefully.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Api } from 'grammy';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import {
  NatsUsers,
  Streams,
  ensureTopology,
  loadTelemetryConfig,
  natsConnectOptions,
  startTelemetry,
  type TelemetryConfig,
  exitOnSignals,
  collectProcessMetrics,
} from '../contracts/index.ts';
import { within } from './async.ts';
import { gatewayConfigFrom, loadGatewayEnv, type GatewayEnv } from './config.ts';
import { agentTokenVerifier, refuseAllAgents } from './http/auth.ts';
import { createGatewayLogger } from './log.ts';
import {
  createRazorpayClient,
  createRazorpayEffects,
  ensureRazorpayEffectsConsumer,
  loadRazorpayApiConfig,
  type RazorpayApiConfig,
  type RazorpayEffects,
} from './razorpay/index.ts';
import { createGateway } from './server.ts';
import { describeTelegramError } from './telegram/deliver.ts';
import { createLeasedSender, type LeasedSender } from './telegram/leased-sender.ts';
import { createTelegramPoller, type TelegramPoller } from './telegram/poller.ts';

export interface RunningGateway {
  readonly url: string;
  stop(): Promise<void>;
}

const REDIS_ERROR_LOG_EVERY_MS = 10_000;

/** Without converging: the streams the gateway writes and reads must exist already. */
async function requireStreams(jsm: JetStreamManager, names: readonly string[]): Promise<void> {
  for (const name of names) {
    try {
      await jsm.streams.info(name);
    } catch (err) {
      throw new Error(
        `stream ${name} is not available (${err instanceof Error ? err.message : String(err)}): start an actors worker with RESPAWN_MIGRATE=true first, or set GATEWAY_ENSURE_STREAMS=true`,
        { cause: err },
      );
    }
  }
}

export interface RunOptions {
  /** Carry out `respawn.out.razorpay` (payment links) in this process, with this API config. */
  razorpayApi?: RazorpayApiConfig;
}

export async function runGateway(
  env: GatewayEnv,
  log: Logger,
  opts: RunOptions = {},
): Promise<RunningGateway> {
  const secrets = [env.TELEGRAM_BOT_TOKEN];
  const config = gatewayConfigFrom(env);
  const nc = await connect(natsConnectOptions(env, NatsUsers.gateway, 'respawn-gateway'));
  const jsm = await jetstreamManager(nc);
  if (env.GATEWAY_ENSURE_STREAMS) {
    await ensureTopology(jsm, { consumersFor: [], replicas: env.RESPAWN_STREAM_REPLICAS });
  } else {
    await requireStreams(jsm, [Streams.ingress.name, Streams.out.name]);
  }
  const js = jetstream(nc);

  // No offline queue: while Redis is down, limits fall back to memory at once, not after a wait.
  // Auto-pipelining: the rate-limit checks of requests arriving together go out in one write.
  const redis = new Redis(env.REDIS_URL, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
  });
  let lastRedisError = 0;
  redis.on('error', (err: Error) => {
    if (Date.now() - lastRedisError < REDIS_ERROR_LOG_EVERY_MS) return;
    lastRedisError = Date.now();
    log.warn({ error: err.message }, 'redis connection error');
  });

  const metricsRegistry = new Registry();
  collectProcessMetrics(metricsRegistry, 'respawn_gateway_');

  if (env.AGENT_TOKEN_SECRET === undefined) {
    log.warn('AGENT_TOKEN_SECRET is not set: every VM agent report will be refused');
  }
  const gateway = createGateway({
    nc,
    redis,
    log,
    config,
    metricsRegistry,
    verifyAgent:
      env.AGENT_TOKEN_SECRET === undefined
        ? refuseAllAgents
        : agentTokenVerifier(env.AGENT_TOKEN_SECRET),
  });

  const api = new Api(env.TELEGRAM_BOT_TOKEN, {
    apiRoot: env.TELEGRAM_API_ROOT,
    timeoutSeconds: env.TELEGRAM_CALL_TIMEOUT_S,
  });
  try {
    const me = await within(api.getMe(), 5_000, 'getMe');
    log.info({ bot: me.username, apiRoot: env.TELEGRAM_API_ROOT }, 'telegram bot identified');
  } catch (err) {
    log.warn({ error: describeTelegramError(err, secrets) }, 'telegram getMe failed; continuing');
  }

  let poller: TelegramPoller | undefined;
  if (env.TELEGRAM_MODE === 'polling') {
    poller = createTelegramPoller({
      api: new Api(env.TELEGRAM_BOT_TOKEN, {
        apiRoot: env.TELEGRAM_API_ROOT,
        timeoutSeconds: env.TELEGRAM_POLL_TIMEOUT_S + env.TELEGRAM_CALL_TIMEOUT_S,
      }),
      ingest: gateway.ingestTelegram,
      log,
      allowedUpdates: env.TELEGRAM_ALLOWED_UPDATES,
      timeoutS: env.TELEGRAM_POLL_TIMEOUT_S,
      secrets,
    });
  } else if (env.TELEGRAM_WEBHOOK_URL !== undefined) {
    await api.setWebhook(env.TELEGRAM_WEBHOOK_URL, {
      ...(env.TELEGRAM_WEBHOOK_SECRET === undefined
        ? {}
        : { secret_token: env.TELEGRAM_WEBHOOK_SECRET }),
      allowed_updates: env.TELEGRAM_ALLOWED_UPDATES,
    });
    log.info({ url: env.TELEGRAM_WEBHOOK_URL }, 'telegram webhook set');
  }

  // Every gateway with TELEGRAM_OUTBOUND may run it; the holder of the sender lease sends.
  let outbound: LeasedSender | undefined;
  if (env.TELEGRAM_OUTBOUND) {
    outbound = createLeasedSender({
      nc,
      js,
      jsm,
      api,
      log,
      metricsRegistry,
      perChatIntervalMs: env.TELEGRAM_PER_CHAT_INTERVAL_MS,
      globalPerSecond: env.TELEGRAM_GLOBAL_PER_SECOND,
      secrets,
    });
    await outbound.start();
  }

  let razorpay: RazorpayEffects | undefined;
  if (opts.razorpayApi !== undefined) {
    const api = opts.razorpayApi;
    await ensureRazorpayEffectsConsumer(nc);
    razorpay = createRazorpayEffects({
      nc,
      log,
      maxAttempts: api.maxAttempts,
      payments: createRazorpayClient({
        keyId: api.keyId,
        keySecret: api.keySecret,
        baseUrl: api.baseUrl,
        timeoutMs: api.timeoutMs,
      }),
    });
    await razorpay.start();
  }

  const url = await gateway.listen({ host: env.GATEWAY_HOST, port: env.GATEWAY_PORT });
  await poller?.start();

  return {
    url,
    async stop() {
      await gateway.close();
      await poller?.stop();
      await outbound?.stop();
      await razorpay?.stop();
      await nc.drain();
      redis.disconnect();
    },
  };
}

async function main(): Promise<void> {
  let env: GatewayEnv;
  let razorpayApi: RazorpayApiConfig | undefined;
  let telemetryConfig: TelemetryConfig;
  let log = createGatewayLogger({ level: 'info' });
  try {
    env = loadGatewayEnv(process.env);
    telemetryConfig = loadTelemetryConfig(process.env, 'respawn-gateway');
    // Razorpay API calls (payment links) run here when their credentials are configured.
    if (process.env.RAZORPAY_KEY_ID !== undefined) razorpayApi = loadRazorpayApiConfig(process.env);
  } catch (err) {
    log.fatal({ err }, 'cannot start');
    process.exit(2);
  }
  log = createGatewayLogger({ level: env.LOG_LEVEL });
  if (razorpayApi === undefined)
    log.warn('RAZORPAY_KEY_ID is not set: payment links are not created');
  // Before anything connects, so the HTTP and Redis instrumentations see every client.
  const telemetry = await startTelemetry({ config: telemetryConfig, log });
  const running = await runGateway(env, log, razorpayApi === undefined ? {} : { razorpayApi });
  exitOnSignals(log, () => running.stop().then(() => telemetry.shutdown()));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    createGatewayLogger({ level: 'info' }).fatal({ err }, 'gateway failed');
    process.exit(1);
  });
}
