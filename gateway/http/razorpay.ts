/**
 * `POST /razorpay/webhook`: X-Razorpay-Signature must be the HMAC-SHA256 (hex) of the raw
 * body with the webhook secret, compared in constant time; the body is published unchanged
 * with Nats-Msg-Id `rzp-<x-razorpay-event-id>` and answered 200 after the acknowledgement,
 * well inside Razorpay's 5-second budget (the publish timeout is 2 s by default).
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import {
  IngressSources,
  RAZORPAY_INGRESS_MSG_PREFIX,
  isValidToken,
  parseJson,
} from '../../contracts/index.ts';
import { Outcomes, Reasons, Sources, type IngressMetrics } from '../metrics.ts';
import type { IngressPublisher } from '../publish.ts';
import { headerValue, verifyRazorpaySignature } from './auth.ts';
import { rawBody, refuse } from './common.ts';
import { tracedPost } from './tracing.ts';

export const RAZORPAY_SIGNATURE_HEADER = 'x-razorpay-signature';
export const RAZORPAY_EVENT_ID_HEADER = 'x-razorpay-event-id';

export function razorpayMsgId(eventId: string): string {
  return `${RAZORPAY_INGRESS_MSG_PREFIX}${eventId}`;
}

export function registerRazorpayWebhook(
  app: FastifyInstance,
  deps: {
    secret: string;
    publish: IngressPublisher;
    metrics: IngressMetrics;
    log: Logger;
  },
): void {
  const source = Sources.razorpay;
  const post = tracedPost(app, source);
  post('/razorpay/webhook', async (request, reply) => {
    const body = rawBody(request);
    const signature = headerValue(request.headers[RAZORPAY_SIGNATURE_HEADER]);
    if (!verifyRazorpaySignature(body, signature, deps.secret)) {
      return refuse(deps, request, reply, {
        source,
        status: 401,
        reason: Reasons.badSignature,
        message: 'missing or invalid X-Razorpay-Signature',
      });
    }
    const eventId = headerValue(request.headers[RAZORPAY_EVENT_ID_HEADER]);
    if (eventId === undefined || !isValidToken(eventId)) {
      return refuse(deps, request, reply, {
        source,
        status: 400,
        reason: Reasons.missingEventId,
        message: 'X-Razorpay-Event-Id is missing or not 1-128 of A-Z a-z 0-9 _ -',
      });
    }
    try {
      parseJson(body);
    } catch (err) {
      return refuse(deps, request, reply, {
        source,
        status: 400,
        reason: Reasons.invalidJson,
        message: err instanceof Error ? err.message : 'body is not JSON',
      });
    }
    const r = await deps.publish(IngressSources.razorpay, body, razorpayMsgId(eventId));
    if (!r.ok) {
      deps.metrics.requests.inc({ source, outcome: Outcomes.unavailable });
      deps.log.warn(
        { source, eventId, error: r.reason },
        'razorpay event not stored; Razorpay will retry',
      );
      return reply.code(503).send({ error: 'unavailable', message: 'not stored; retry later' });
    }
    deps.metrics.requests.inc({
      source,
      outcome: r.duplicate ? Outcomes.duplicate : Outcomes.published,
    });
    return reply.code(200).send({ ok: true, duplicate: r.duplicate });
  });
}
