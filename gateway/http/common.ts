/** What the gateway's routes share: the raw body, and one way to refuse a request. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Outcomes, type IngressMetrics, type Reason, type Source } from '../metrics.ts';

/** The body exactly as received: the JSON parser is replaced by one that keeps the bytes. */
export function rawBody(request: FastifyRequest): Buffer {
  const body: unknown = request.body;
  return Buffer.isBuffer(body) ? body : Buffer.alloc(0);
}

export interface Refusal {
  source: Source;
  status: number;
  reason: Reason;
  message: string;
  /** Sent as `Retry-After` (whole seconds): when a client over a limit may try again. */
  retryAfterS?: number;
}

/**
 * Counts, logs (never a header value, so no secret or signature) and answers a refusal.
 * `level` lets floods (rate limits) log quietly; metrics count them all.
 */
export function refuse(
  deps: { metrics: IngressMetrics; log: Logger },
  request: FastifyRequest,
  reply: FastifyReply,
  r: Refusal,
  level: 'warn' | 'info' | 'debug' = 'warn',
): FastifyReply {
  deps.metrics.requests.inc({ source: r.source, outcome: Outcomes.rejected });
  deps.metrics.rejections.inc({ source: r.source, reason: r.reason });
  deps.log[level](
    { source: r.source, reason: r.reason, status: r.status, ip: request.ip, url: request.url },
    `request refused: ${r.message}`,
  );
  const answer =
    r.retryAfterS === undefined ? reply : reply.header('retry-after', String(r.retryAfterS));
  return answer.code(r.status).send({ error: r.reason, message: r.message });
}
