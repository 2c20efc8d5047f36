/**
 * bench:e2e's parts other than its schedule: the stack it drives (a private nats-server, a fresh
 * database, the Bot API fake, and the worker and gateway as processes or in the bench's own
 * thread), what one command is on the wire (a player's /status posted to the webhook), the raw
 * limits it measures beside it, and its distributions.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Api } from 'grammy';
import type { Logger } from 'pino';
import { defaultAllocatorConfig } from '../../actors/allocator/index.ts';
import { billingConfig } from '../../actors/billing/index.ts';
import { defaultSessionConfig } from '../../actors/session/index.ts';
import { ensureTopology } from '../../contracts/index.ts';
import { startTelegramFake, type TelegramFake } from '../../deploy/fakes/telegram/index.ts';
import { startIngress } from '../../deploy/local/ingress.ts';
import { freePort } from '../../deploy/local/nats.ts';
import { startLocalWorker } from '../../deploy/local/worker.ts';
import { TELEGRAM_SECRET_HEADER, loadGatewayEnv, runGateway } from '../../gateway/index.ts';
import { spawnEntry, untilReady, type Child } from './procs.ts';
import { createTestDatabase, redisPrefix, redisUrl, startNats } from '../harness/index.ts';

/** Sequential grammY calls measuring the fake's own round trip. */
const RAW_FAKE_CALLS = 500;
/** Sequential JetStream publishes measuring the server's own round trip. */
const RAW_JS_MSGS = 1000;

export interface StackOptions {
  token: string;
  secret: string;
  perChatMs: number;
  globalPerS: number;
  topology: 'processes' | 'one-process';
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export interface Dist {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function dist(values: readonly number[]): Dist {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? NaN };
}

export interface Stack {
  gatewayUrl: string;
  fake: TelegramFake;
  nc: NatsConnection;
  /** Processes whose CPU time is reported per command. */
  procs: { name: string; pid: () => number }[];
  /** The worker process's /metrics (processes topology): its batches' count, size and time. */
  workerMetricsUrl?: string;
  /** The child processes (processes topology), whose warnings and errors are counted. */
  children?: Child[];
  stop(): Promise<void>;
}

function gatewaySettings(
  natsUrl: string,
  port: number,
  fakeUrl: string,
  o: StackOptions,
): Record<string, string> {
  return {
    NATS_URL: natsUrl,
    REDIS_URL: redisUrl(),
    LOG_LEVEL: 'warn',
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: String(port),
    TELEGRAM_BOT_TOKEN: o.token,
    TELEGRAM_API_ROOT: fakeUrl,
    TELEGRAM_MODE: 'webhook',
    TELEGRAM_WEBHOOK_SECRET: o.secret,
    TELEGRAM_WEBHOOK_URL: `http://127.0.0.1:${port}/telegram/webhook`,
    TELEGRAM_PER_CHAT_INTERVAL_MS: String(o.perChatMs),
    TELEGRAM_GLOBAL_PER_SECOND: String(o.globalPerS),
    RAZORPAY_WEBHOOK_SECRET: `bench-${Math.random().toString(36).slice(2)}`,
    RATE_LIMIT_PREFIX: redisPrefix(),
    // All load comes from loopback: exempt it from the per-IP limit, as startLocal does.
    RATE_LIMIT_IP_EXEMPT: '127.0.0.0/8,::1/128',
  };
}

export async function startStack(log: Logger, o: StackOptions): Promise<Stack> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        log.warn({ err }, 'stop failed');
      }
    }
  };
  try {
    const nats = await startNats();
    stops.push(() => nats.stop());
    const database = await createTestDatabase();
    stops.push(() => database.drop());
    const fake = await startTelegramFake({ token: o.token, port: 0, webhookRetryMs: 200 });
    stops.push(() => fake.stop());
    const nc = await connect({ servers: nats.url, name: 'bench-e2e', noAsyncTraces: true });
    stops.push(() => nc.drain());
    const port = await freePort('127.0.0.1');
    const settings = gatewaySettings(nats.url, port, fake.url, o);
    if (o.topology === 'processes') {
      // The deployment's shape: a worker process (actors and the Telegram ingress router) and a
      // gateway process, each started from its entry point; the bench keeps the fake and load.
      await ensureTopology(await jetstreamManager(nc), { consumersFor: [] });
      const workerPort = await freePort('127.0.0.1');
      const worker = spawnEntry('worker', 'actors/main.ts', {
        NATS_URL: nats.url,
        DATABASE_URL: database.url,
        LOG_LEVEL: 'warn',
        RESPAWN_HTTP_PORT: String(workerPort),
        RESPAWN_ACTORS: 'session,billing,alloc',
        RESPAWN_INGRESS: 'telegram',
        RESPAWN_SESSION_ADMISSION: 'true',
      });
      stops.push(() => worker.stop());
      await untilReady(worker, `http://127.0.0.1:${workerPort}/readyz`);
      const gateway = spawnEntry('gateway', 'gateway/main.ts', settings);
      stops.push(() => gateway.stop());
      await untilReady(gateway, `http://127.0.0.1:${port}/readyz`);
      const procs = [
        { name: 'bench (load, fake)', pid: () => process.pid },
        { name: 'worker', pid: () => worker.process.pid ?? -1 },
        { name: 'gateway', pid: () => gateway.process.pid ?? -1 },
        { name: 'nats-server', pid: () => nats.pid },
      ];
      return {
        gatewayUrl: `http://127.0.0.1:${port}`,
        fake,
        nc,
        procs,
        workerMetricsUrl: `http://127.0.0.1:${workerPort}/metrics`,
        children: [worker, gateway],
        stop,
      };
    }
    const billing = billingConfig({});
    const worker = await startLocalWorker({
      natsUrl: nats.url,
      databaseUrl: database.url,
      log,
      session: { ...defaultSessionConfig, requireAdmission: true },
      billing,
      allocator: defaultAllocatorConfig,
    });
    stops.push(() => worker.stop());
    const ingress = await startIngress({ nc, log, topupPresetsPaise: billing.topupPresetsPaise });
    stops.push(() => ingress.stop());
    const gateway = await runGateway(loadGatewayEnv(settings), log);
    stops.push(() => gateway.stop());
    const procs = [
      { name: 'bench (everything)', pid: () => process.pid },
      { name: 'nats-server', pid: () => nats.pid },
    ];
    return { gatewayUrl: gateway.url, fake, nc, procs, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A player's `/status` as Telegram posts it to the webhook (a grammY-shaped Update). */
export function statusUpdate(updateId: number, chatId: number): string {
  return JSON.stringify({
    update_id: updateId,
    message: {
      message_id: updateId,
      date: Math.floor(Date.now() / 1000),
      chat: { id: chatId, type: 'private', first_name: `P${chatId}` },
      from: { id: chatId, is_bot: false, first_name: `P${chatId}` },
      text: '/status',
      entities: [{ type: 'bot_command', offset: 0, length: 7 }],
    },
  });
}

/** POSTs one update to the webhook with its secret token; resolves with the status (0: failed). */
export function postWebhook(
  agent: http.Agent,
  url: URL,
  body: string,
  secret: string,
): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          [TELEGRAM_SECRET_HEADER]: secret,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** The Bot API fake's own round trip: sequential grammY sendMessage calls. */
export async function rawFake(fake: TelegramFake, token: string): Promise<Dist> {
  const api = new Api(token, { apiRoot: fake.url });
  const times: number[] = [];
  for (let i = 0; i < RAW_FAKE_CALLS; i++) {
    const t = performance.now();
    await api.sendMessage(1, `raw ${i}`);
    times.push(performance.now() - t);
  }
  return dist(times);
}

/** Bare JetStream: sequential publishes (ack awaited) to a file stream, consumed in order. */
export async function rawJetStream(nc: NatsConnection): Promise<{ ack: Dist; e2e: Dist }> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await jsm.streams.add({ name: 'BENCH_E2E_RAW', subjects: ['bench.e2e.raw'] });
  const consumer = await js.consumers.get('BENCH_E2E_RAW');
  const sentAt = new Map<number, number>();
  const e2e: number[] = [];
  const messages = await consumer.consume();
  const done = (async () => {
    for await (const m of messages) {
      const i = Number(m.string());
      e2e.push(performance.now() - (sentAt.get(i) ?? NaN));
      if (e2e.length >= RAW_JS_MSGS) break;
    }
  })();
  const ack: number[] = [];
  for (let i = 0; i < RAW_JS_MSGS; i++) {
    const t = performance.now();
    sentAt.set(i, t);
    await js.publish('bench.e2e.raw', String(i));
    ack.push(performance.now() - t);
  }
  await done;
  await messages.close();
  await jsm.streams.delete('BENCH_E2E_RAW');
  return { ack: dist(ack), e2e: dist(e2e) };
}
