/**
 * startLocal: the whole of Respawn in this process — NATS (a private nats-server unless a URL
 * is given), PostgreSQL (created, migrated), the fakes of every third party without
 * credentials, the gateway, one actor worker (session + billing + alloc), the ingress routers,
 * the Azure and Razorpay effects runners and the simulated VM agents. Each component logs one
 * line with its URL; `stop()` takes everything down in reverse order.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { defaultAllocatorConfig, type AllocatorConfig } from '../../actors/allocator/index.ts';
import { billingConfig, type BillingConfig } from '../../actors/billing/index.ts';
import { defaultSessionConfig, type SessionConfig } from '../../actors/session/index.ts';
import { loadGatewayEnv, runGateway } from '../../gateway/index.ts';
import { createAgentSim, type AgentSim } from '../agent-sim/index.ts';
import type { ArmFake } from '../fakes/arm/index.ts';
import { startRazorpayFake, type RazorpayFake } from '../fakes/razorpay/index.ts';
import { startTelegramFake, type TelegramFake } from '../fakes/telegram/index.ts';
import { createDiskRecords } from '../../actors/allocator/disk-round.ts';
import { startLocalAzure } from './azure.ts';
import { ensureDatabase } from './db.ts';
import { startIngress } from './ingress.ts';
import { freePort, startLocalNats } from './nats.ts';
import type { LocalOptions } from './options.ts';
import { startSandbox } from './sandbox.ts';
import { startLocalWorker } from './worker.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FAKE_BOT_TOKEN = '1000001:respawn-local-fake-token';
const FAKE_BOT_USERNAME = 'respawn_fake_bot';
const FAKE_RAZORPAY = { keyId: 'rzp_test_respawnlocal', keySecret: 'respawn-local-key-secret' };

export interface LocalRun {
  gatewayUrl: string;
  natsUrl: string;
  databaseUrl: string;
  /** Present when the fake is used instead of the real service. */
  arm: ArmFake | undefined;
  telegram: TelegramFake | undefined;
  razorpay: RazorpayFake | undefined;
  agents: AgentSim | undefined;
  /** The sandbox chat page, when served. */
  sandboxUrl: string | undefined;
  /** The resolved actor configurations. */
  config: { session: SessionConfig; billing: BillingConfig; allocator: AllocatorConfig };
  stop(): Promise<void>;
}

const random = (bytes: number): string => randomBytes(bytes).toString('base64url');

export async function startLocal(opts: LocalOptions): Promise<LocalRun> {
  const log = opts.log;
  const host = opts.host ?? '127.0.0.1';
  const t = opts.timings ?? {};
  const region = opts.region ?? 'centralindia';
  const stops: { name: string; stop: () => Promise<void> }[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.reverse()) {
      try {
        await s.stop();
      } catch (err) {
        log.warn({ err, component: s.name }, 'stop failed');
      }
    }
    stops.length = 0;
  };
  const started = (component: string, url: string, extra: Record<string, unknown> = {}): void => {
    log.info({ component, url, ...extra }, `${component} started`);
    opts.signal?.throwIfAborted();
  };

  try {
    // NATS
    let natsUrl = opts.natsUrl;
    if (natsUrl === undefined) {
      const nats = await startLocalNats({
        root: ROOT,
        port: opts.natsPort ?? 4223,
        log,
        ...(opts.natsServerBin === undefined ? {} : { bin: opts.natsServerBin }),
      });
      stops.push({ name: 'nats', stop: () => nats.stop() });
      natsUrl = nats.url;
    }
    started('nats', natsUrl);

    // PostgreSQL
    const databaseUrl = opts.databaseUrl ?? 'postgres://postgres@127.0.0.1:5432/respawn';
    const made = await ensureDatabase(databaseUrl);
    started('postgres', redactUrl(databaseUrl), { database: made });

    // The gateway's URL must be known before the fakes that call it (webhooks) start.
    const gatewayPort =
      (opts.gatewayPort ?? 8080) === 0 ? await freePort(host) : (opts.gatewayPort ?? 8080);
    const gatewayUrl = `http://${host}:${gatewayPort}`;
    const agentSecret = opts.agentSecret ?? random(32);

    // Telegram: the real Bot API with a token, the fake otherwise.
    let telegram: TelegramFake | undefined;
    let tg = opts.telegram;
    const telegramWebhookSecret = tg?.webhookSecret ?? random(24);
    if (tg === undefined) {
      telegram = await startTelegramFake({
        token: FAKE_BOT_TOKEN,
        botUsername: FAKE_BOT_USERNAME,
        host,
        port: opts.ports?.telegram ?? 8081,
        webhookRetryMs: 200,
      });
      stops.push({ name: 'telegram-fake', stop: () => telegram!.stop() });
      tg = {
        token: FAKE_BOT_TOKEN,
        apiRoot: telegram.url,
        mode: 'webhook',
        webhookUrl: `${gatewayUrl}/telegram/webhook`,
      };
      started('telegram-fake', telegram.url, { bot: telegram.bot.username });
    }

    // Razorpay: real keys, or the fake whose checkout fires signed webhooks at the gateway.
    let razorpay: RazorpayFake | undefined;
    let rzp = opts.razorpay;
    if (rzp === undefined) {
      const webhookSecret = random(24);
      razorpay = await startRazorpayFake({
        ...FAKE_RAZORPAY,
        webhookSecret,
        webhookUrl: `${gatewayUrl}/razorpay/webhook`,
        host,
        port: opts.ports?.razorpay ?? 8082,
      });
      stops.push({ name: 'razorpay-fake', stop: () => razorpay!.stop() });
      rzp = { ...FAKE_RAZORPAY, webhookSecret, apiUrl: razorpay.url };
      started('razorpay-fake', razorpay.url, { checkout: `${razorpay.url}/pay/<link id>` });
    }

    // The actors.
    const session: SessionConfig = {
      ...defaultSessionConfig,
      region,
      requireAdmission: true,
      ...opts.session,
    };
    const billing = billingConfig(opts.billing ?? {});
    const allocator: AllocatorConfig = { ...defaultAllocatorConfig, ...opts.allocator };
    const worker = await startLocalWorker({
      natsUrl,
      databaseUrl,
      log,
      session,
      billing,
      allocator,
      ...(t.timerPollMs === undefined ? {} : { timerPollMs: t.timerPollMs }),
    });
    stops.push({ name: 'worker', stop: () => worker.stop() });
    started('worker', natsUrl, { actors: ['session', 'billing', 'alloc'], admission: true });

    // A connection for the routers and the Azure runner (the gateway keeps its own).
    const nc: NatsConnection = await connect({
      servers: natsUrl,
      name: 'respawn-local',
      maxReconnectAttempts: -1,
      noAsyncTraces: true, // see contracts/nats-client.ts
    });
    stops.push({ name: 'nats-client', stop: () => nc.drain() });
    const ingress = await startIngress({
      nc,
      log,
      topupPresetsPaise: billing.topupPresetsPaise,
      ...(telegram === undefined ? {} : { botUsername: FAKE_BOT_USERNAME }),
    });
    stops.push({ name: 'ingress', stop: () => ingress.stop() });
    started('ingress', natsUrl, { routers: ingress.names });

    const azure = await startLocalAzure({
      js: jetstream(nc),
      jsm: await jetstreamManager(nc),
      log,
      region,
      azure: opts.azure,
      fake: {
        host,
        port: opts.ports?.arm ?? 8443,
        lroLatencyMs: t.lroLatencyMs ?? 3_000,
        lroPolls: t.lroPolls ?? 2,
      },
      pollIntervalMs: t.azurePollMs ?? 1_000,
      agent: {
        reportUrl: opts.agentReportUrl ?? `${gatewayUrl}/agent/report`,
        masterSecret: agentSecret,
      },
      diskRecords: createDiskRecords(worker.knex, log),
    });
    stops.push({ name: 'azure', stop: () => azure.stop() });
    if (azure.arm !== undefined) started('arm-fake', azure.arm.url);
    started('azure-effects', azure.url, { region });

    // The gateway, with the Razorpay effects runner in its process.
    const env = loadGatewayEnv({
      NATS_URL: natsUrl,
      REDIS_URL: opts.redisUrl ?? 'redis://127.0.0.1:6379',
      LOG_LEVEL: 'info',
      GATEWAY_HOST: host,
      GATEWAY_PORT: String(gatewayPort),
      TELEGRAM_BOT_TOKEN: tg.token,
      ...(tg.apiRoot === undefined ? {} : { TELEGRAM_API_ROOT: tg.apiRoot }),
      TELEGRAM_MODE: tg.mode ?? (tg.webhookUrl === undefined ? 'polling' : 'webhook'),
      TELEGRAM_WEBHOOK_SECRET: telegramWebhookSecret,
      ...(tg.webhookUrl === undefined ? {} : { TELEGRAM_WEBHOOK_URL: tg.webhookUrl }),
      ...(t.perChatIntervalMs === undefined
        ? {}
        : { TELEGRAM_PER_CHAT_INTERVAL_MS: String(t.perChatIntervalMs) }),
      RAZORPAY_WEBHOOK_SECRET: rzp.webhookSecret,
      AGENT_TOKEN_SECRET: agentSecret,
      ...(opts.rateLimitPrefix === undefined ? {} : { RATE_LIMIT_PREFIX: opts.rateLimitPrefix }),
      // Everything local arrives from loopback: limit per player, not per IP.
      RATE_LIMIT_IP_EXEMPT: '127.0.0.0/8,::1/128',
    });
    const gateway = await runGateway(env, log, {
      razorpayApi: {
        keyId: rzp.keyId,
        keySecret: rzp.keySecret,
        baseUrl: rzp.apiUrl ?? 'https://api.razorpay.com',
        timeoutMs: 10_000,
        maxAttempts: 8,
      },
    });
    stops.push({ name: 'gateway', stop: () => gateway.stop() });
    started('gateway', gateway.url, {
      telegram: env.TELEGRAM_MODE,
      webhooks: ['/telegram/webhook', '/razorpay/webhook', '/agent/report'],
    });
    started('razorpay-effects', rzp.apiUrl ?? 'https://api.razorpay.com');

    // The simulated VM agents follow the ARM fake.
    let agents: AgentSim | undefined;
    if (azure.arm !== undefined && opts.agentSim !== false) {
      agents = createAgentSim({
        // Each VM's agent reads where to report and its token from the VM's userData.
        arm: azure.arm,
        log,
        bootDelayMs: t.agentBootMs ?? 5_000,
        heartbeatMs: t.agentHeartbeatMs ?? 30_000,
      });
      agents.start();
      const sim = agents;
      stops.push({ name: 'agent-sim', stop: () => sim.stop() });
      started('agent-sim', `${gateway.url}/agent/report`);
    }

    let sandboxUrl: string | undefined;
    if (telegram !== undefined && opts.sandbox !== false) {
      const sandbox = await startSandbox({
        host,
        port: opts.ports?.sandbox ?? 8090,
        telegramUrl: telegram.url,
        log,
      });
      stops.push({ name: 'sandbox', stop: () => sandbox.stop() });
      sandboxUrl = sandbox.url;
      started('sandbox', sandbox.url);
    }

    return {
      gatewayUrl: gateway.url,
      natsUrl,
      databaseUrl,
      arm: azure.arm,
      telegram,
      razorpay,
      agents,
      sandboxUrl,
      config: { session, billing, allocator },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** A URL without its password, for the log. */
function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.password !== '') u.password = '***';
  return u.toString();
}
