/**
 * The gateway's HTTP server: Respawn's only edge. It authenticates what arrives (Telegram,
 * Razorpay, VM agents), limits floods, and publishes it to RESPAWN_IN; it holds no business
 * logic and no database.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
} from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { GatewayConfig } from './config.ts';
import { registerAgentReport } from './http/agent.ts';
import { refuseAllAgents, type AgentVerifier } from './http/auth.ts';
import { refuse } from './http/common.ts';
import { registerHealth } from './http/health.ts';
import { registerRazorpayWebhook } from './http/razorpay.ts';
import { registerTelegramWebhook } from './http/telegram.ts';
import { Reasons, Sources, createIngressMetrics, type Source } from './metrics.ts';
import { watchConnection } from './nats-status.ts';
import { createJsPublisher } from '../contracts/index.ts';
import { createIngressPublisher } from './publish.ts';
import { createRateLimits } from './ratelimit.ts';
import { createTelegramIngest, type TelegramIngest } from './telegram/ingest.ts';

export interface GatewayDeps {
  nc: NatsConnection;
  redis: Redis;
  log: Logger;
  config: GatewayConfig;
  metricsRegistry: Registry;
  /** Checks a VM agent's per-VM token; the default refuses every report. */
  verifyAgent?: AgentVerifier;
}

export interface Gateway {
  readonly app: FastifyInstance;
  /** The Telegram path into RESPAWN_IN, for long polling (same checks and msgID as the webhook). */
  readonly ingestTelegram: TelegramIngest;
  /** Starts listening; resolves to the base URL. */
  listen(opts: { host: string; port: number }): Promise<string>;
  /** Stops accepting requests and waits for those in flight. */
  close(): Promise<void>;
}

const SOURCE_OF_ROUTE: Record<string, Source> = {
  '/telegram/webhook': Sources.telegram,
  '/razorpay/webhook': Sources.razorpay,
  '/agent/report': Sources.agent,
};

export function createGateway(deps: GatewayDeps): Gateway {
  const { config } = deps;
  const log = deps.log.child({ component: 'gateway' });
  const metrics = createIngressMetrics(deps.metricsRegistry);
  const connection = watchConnection(deps.nc);
  // Every accepted webhook and agent report is one publish (contracts/js-publish.ts).
  const publisher = createJsPublisher(deps.nc, { timeoutMs: config.publishTimeoutMs });
  const publish = createIngressPublisher({
    js: publisher,
    connection,
    timeoutMs: config.publishTimeoutMs,
    metrics,
  });
  // The limiter names its own component (a second `component` key would repeat it in the line).
  const limits = createRateLimits({
    redis: deps.redis,
    config: config.rateLimit,
    metrics,
    log: deps.log,
  });
  const ingestTelegram = createTelegramIngest({
    publish,
    limits,
    metrics,
    log,
    allowedUpdates: config.telegram.allowedUpdates,
  });

  // Typed as fastify's logger so route modules take a plain FastifyInstance.
  const fastifyLog: FastifyBaseLogger = log;
  const app = fastify({
    loggerInstance: fastifyLog,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    return503OnClosing: true,
  });

  // Signatures are over the exact bytes received, and ingress is published unchanged: keep
  // the body as a Buffer and let each route decode it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
    done(null, body);
  });

  // The per-IP limit runs before the body is read, so a flood costs one Redis call each.
  app.addHook('onRequest', async (request, reply) => {
    const source = SOURCE_OF_ROUTE[request.routeOptions.url ?? ''];
    if (source === undefined) return;
    const verdict = await limits.ip(request.ip);
    if (!verdict.allowed) {
      return refuse(
        { metrics, log },
        request,
        reply,
        {
          source,
          status: 429,
          reason: Reasons.ipRateLimited,
          message: 'too many requests from this address',
          retryAfterS: verdict.retryAfterS,
        },
        'debug',
      );
    }
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const source = SOURCE_OF_ROUTE[request.routeOptions.url ?? ''] ?? Sources.telegram;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return refuse({ metrics, log }, request, reply, {
        source,
        status: 413,
        reason: Reasons.bodyTooLarge,
        message: `body is larger than ${config.bodyLimitBytes} bytes`,
      });
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return refuse({ metrics, log }, request, reply, {
        source,
        status: 415,
        reason: Reasons.unsupportedMediaType,
        message: 'only application/json is accepted',
      });
    }
    const status = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) log.error({ err, url: request.url }, 'request failed');
    else log.info({ code: err.code, status, url: request.url }, `request refused: ${err.message}`);
    return reply.code(status).send({ error: err.code ?? 'error', message: err.message });
  });

  registerTelegramWebhook(app, {
    secret: config.telegram.webhookSecret,
    ingest: ingestTelegram,
    metrics,
    log,
  });
  registerRazorpayWebhook(app, {
    secret: config.razorpay.webhookSecret,
    publish,
    metrics,
    log,
  });
  registerAgentReport(app, {
    verifyAgent: deps.verifyAgent ?? refuseAllAgents,
    publish,
    metrics,
    log,
  });
  registerHealth(app, {
    nc: deps.nc,
    connection,
    redis: deps.redis,
    registry: deps.metricsRegistry,
    timeoutMs: config.readyTimeoutMs,
  });

  return {
    app,
    ingestTelegram,
    async listen(opts) {
      const url = await app.listen({ host: opts.host, port: opts.port });
      log.info({ url }, 'gateway listening');
      return url;
    },
    async close() {
      await app.close();
      publisher.close();
      connection.stop();
    },
  };
}
