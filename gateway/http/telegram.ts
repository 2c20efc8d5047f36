/**
 * `POST /telegram/webhook`: the secret token Telegram was given in setWebhook is checked in
 * constant time before the update is parsed; the update is answered 200 only once JetStream
 * has stored it, 503 otherwise (Telegram retries, the Nats-Msg-Id keeps it single). A callback
 * query stored, or dropped on purpose, is answered in the response body with
 * `answerCallbackQuery` (a rate-limited one with a "slow down" notice).
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Reasons, Sources, type IngressMetrics } from '../metrics.ts';
import { callbackAnswer, type TelegramIngest } from '../telegram/ingest.ts';
import { headerValue, safeEqual } from './auth.ts';
import { rawBody, refuse } from './common.ts';
import { tracedPost } from './tracing.ts';

export const TELEGRAM_SECRET_HEADER = 'x-telegram-bot-api-secret-token';

export function registerTelegramWebhook(
  app: FastifyInstance,
  deps: {
    secret: string | undefined;
    ingest: TelegramIngest;
    metrics: IngressMetrics;
    log: Logger;
  },
): void {
  const source = Sources.telegram;
  const post = tracedPost(app, source);
  post('/telegram/webhook', async (request, reply) => {
    const given = headerValue(request.headers[TELEGRAM_SECRET_HEADER]);
    if (deps.secret === undefined || given === undefined || !safeEqual(given, deps.secret)) {
      return refuse(deps, request, reply, {
        source,
        status: 401,
        reason: Reasons.badSecret,
        message: 'missing or wrong X-Telegram-Bot-Api-Secret-Token',
      });
    }
    const r = await deps.ingest(rawBody(request));
    // A pressed button is answered in the webhook's own response (Telegram runs a Bot API
    // method given there), so the player's button stops spinning at once.
    const answer = callbackAnswer(r);
    if (answer !== undefined) {
      return reply.code(200).send({ method: 'answerCallbackQuery', ...answer });
    }
    switch (r.kind) {
      case 'published':
        return reply.code(200).send({ ok: true, duplicate: r.duplicate });
      case 'dropped':
        return reply.code(200).send({ ok: true, dropped: r.reason });
      case 'invalid':
        return reply.code(400).send({ error: r.reason, message: r.message });
      case 'unavailable':
        return reply.code(503).send({ error: 'unavailable', message: 'not stored; retry later' });
    }
  });
}
