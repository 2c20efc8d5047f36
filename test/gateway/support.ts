/**
 * What the gateway's tests share: a private nats-server with Respawn's topology, a Redis
 * client, a gateway listening on a random port with a unique rate-limit prefix, a log capture,
 * and an HTTP client that can choose its source address (127.0.0.x) for per-IP limits.
 */
import http from 'node:http';
import { Api } from 'grammy';
import { Writable } from 'node:stream';
import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { Streams, TELEGRAM_OUT_CONSUMER, ensureTopology } from '../../contracts/index.ts';
import {
  createGateway,
  type Gateway,
  type GatewayConfig,
  type GatewayDeps,
} from '../../gateway/index.ts';
import { redisPrefix, redisUrl, startNats, type NatsServerHandle } from '../harness/index.ts';
import { eventually } from '../support/runtime-env.ts';
import { startTelegramFake, type TelegramFake } from '../../deploy/fakes/telegram/index.ts';
import { afterAll, beforeAll } from 'vitest';

export const TELEGRAM_SECRET = 'tg-secret_0123456789';
export const RAZORPAY_SECRET = 'rzp_webhook_secret_abcdef';
export const BOT_TOKEN = '123456:TEST-token_abcdefghij';

export interface Bus {
  nats: NatsServerHandle;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  dispose(): Promise<void>;
}

export async function startBus(): Promise<Bus> {
  const nats = await startNats();
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const jsm = await jetstreamManager(nc);
  await ensureTopology(jsm, { consumersFor: [] });
  return {
    nats,
    nc,
    js: jetstream(nc),
    jsm,
    async dispose() {
      await nc.close();
      await nats.stop();
    },
  };
}

/** What a Telegram sender needs in a test: the bus, grammY at the fake, a quiet log. */
export function senderDeps(bus: Bus, apiRoot: string, metricsRegistry: Registry) {
  return {
    nc: bus.nc,
    js: bus.js,
    jsm: bus.jsm,
    api: new Api(BOT_TOKEN, { apiRoot }),
    log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    metricsRegistry,
  };
}

/**
 * A bus and a Bot API fake for the file's tests, started before them and stopped after:
 * read `.bus` and `.fake` inside the tests.
 */
export function busAndFake(): { readonly bus: Bus; readonly fake: TelegramFake } {
  let bus: Bus | undefined;
  let fake: TelegramFake | undefined;
  beforeAll(async () => {
    bus = await startBus();
    fake = await startTelegramFake({ token: BOT_TOKEN });
  });
  afterAll(async () => {
    await fake?.stop();
    await bus?.dispose();
  });
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('used before beforeAll');
    return v;
  };
  return {
    get bus() {
      return started(bus);
    },
    get fake() {
      return started(fake);
    },
  };
}

/** Resolves when the Telegram sender's consumer has nothing pending and nothing unacked. */
export async function outSettled(bus: Bus, timeoutMs = 15_000): Promise<void> {
  await eventually(
    'every out message settled',
    async () => {
      const ci = await bus.jsm.consumers.info(Streams.out.name, TELEGRAM_OUT_CONSUMER);
      return ci.num_pending === 0 && ci.num_ack_pending === 0;
    },
    timeoutMs,
  );
}

export interface LogCapture {
  log: Logger;
  lines: Record<string, unknown>[];
  text(): string;
}

export function captureLog(): LogCapture {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          raw.push(line);
          lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        cb();
      },
    }),
  );
  return { log, lines, text: () => raw.join('\n') };
}

export function testConfig(over: Partial<GatewayConfig> = {}): GatewayConfig {
  return {
    telegram: {
      mode: 'webhook',
      webhookSecret: TELEGRAM_SECRET,
      allowedUpdates: ['message', 'edited_message', 'callback_query', 'my_chat_member'],
    },
    razorpay: { webhookSecret: RAZORPAY_SECRET },
    rateLimit: {
      prefix: redisPrefix(),
      ip: { points: 100_000, durationS: 60 },
      player: { points: 100_000, durationS: 60 },
      exempt: [],
      timeoutMs: 250,
    },
    publishTimeoutMs: 500,
    readyTimeoutMs: 300,
    bodyLimitBytes: 64 * 1024,
    trustProxy: false,
    ...over,
  };
}

export interface RunningTestGateway {
  gateway: Gateway;
  url: string;
  registry: Registry;
  redis: Redis;
  logs: LogCapture;
  close(): Promise<void>;
}

export async function startGateway(
  bus: Pick<Bus, 'nc' | 'js'>,
  opts: { config?: GatewayConfig; redis?: Redis; verifyAgent?: GatewayDeps['verifyAgent'] } = {},
): Promise<RunningTestGateway> {
  const redis = opts.redis ?? new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
  // Until Redis is ready, limits are counted in memory (by design); tests count in Redis.
  if (opts.redis === undefined && redis.status !== 'ready') {
    await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
  }
  const registry = new Registry();
  const logs = captureLog();
  const gateway = createGateway({
    nc: bus.nc,
    redis,
    log: logs.log,
    config: opts.config ?? testConfig(),
    metricsRegistry: registry,
    ...(opts.verifyAgent === undefined ? {} : { verifyAgent: opts.verifyAgent }),
  });
  const url = await gateway.listen({ host: '127.0.0.1', port: 0 });
  return {
    gateway,
    url,
    registry,
    redis,
    logs,
    async close() {
      await gateway.close();
      redis.disconnect();
    },
  };
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  text: string;
}

/** A POST (or GET) from a chosen local address, so per-IP limits can be exercised. */
export function request(
  base: string,
  path: string,
  opts: {
    method?: 'GET' | 'POST';
    body?: string | Buffer;
    headers?: Record<string, string>;
    from?: string;
  } = {},
): Promise<HttpAnswer> {
  const url = new URL(path, base);
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
        localAddress: opts.from ?? '127.0.0.1',
        agent: false,
        headers: {
          ...(body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': String(body.length) }),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text) as unknown;
          } catch {
            // Not JSON (metrics): keep the text.
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
        });
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export function postUpdate(
  base: string,
  update: unknown,
  opts: { secret?: string; from?: string } = {},
) {
  return request(base, '/telegram/webhook', {
    body: typeof update === 'string' ? update : JSON.stringify(update),
    headers: { 'x-telegram-bot-api-secret-token': opts.secret ?? TELEGRAM_SECRET },
    ...(opts.from === undefined ? {} : { from: opts.from }),
  });
}

/** A Telegram update as Telegram sends it: a private text message from `userId`. */
export function textUpdate(
  updateId: number,
  userId: number,
  text: string,
): Record<string, unknown> {
  return {
    update_id: updateId,
    message: {
      message_id: updateId,
      date: 1_700_000_000,
      chat: { id: userId, type: 'private', first_name: 'Asha' },
      from: { id: userId, is_bot: false, first_name: 'Asha', language_code: 'en' },
      text,
      ...(text.startsWith('/')
        ? { entities: [{ type: 'bot_command', offset: 0, length: text.length }] }
        : {}),
    },
  };
}

export interface Stored {
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
}

/** Every message stored in a stream (small streams only), optionally of one subject. */
export async function stored(
  jsm: JetStreamManager,
  stream: string,
  subject?: string,
): Promise<Stored[]> {
  const info = await jsm.streams.info(stream);
  const out: Stored[] = [];
  if (info.state.messages === 0) return out;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m === null || (subject !== undefined && m.subject !== subject)) continue;
    const headers: Record<string, string> = {};
    if (m.header !== undefined) for (const k of m.header.keys()) headers[k] = m.header.get(k);
    out.push({ subject: m.subject, data: m.data, headers });
  }
  return out;
}

/** The current value of a counter with the given labels, from the registry. */
export async function counter(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return hit?.value ?? 0;
}
