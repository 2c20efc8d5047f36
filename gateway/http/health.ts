/**
 * `/healthz` (the process answers; touches nothing), `/readyz` (NATS connected and JetStream
 * answering, Redis answering PING, each within a short timeout), `/metrics` (Prometheus text
 * from the registry passed in).
 *
 * Readiness depends on NATS alone: without it nothing can be stored, so every webhook would be
 * a 503. Without Redis the rate limits count in process memory and webhooks keep flowing, so a
 * Redis outage must not take every gateway out of service: it is reported (`degraded`), not
 * failed.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { within } from '../async.ts';
import type { ConnectionWatch } from '../nats-status.ts';

export interface Check {
  ok: boolean;
  detail: string;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export function registerHealth(
  app: FastifyInstance,
  deps: {
    nc: NatsConnection;
    connection: ConnectionWatch;
    redis: Redis;
    registry: Registry;
    timeoutMs: number;
  },
): void {
  let jsm: Promise<JetStreamManager> | undefined;

  async function checkNats(): Promise<Check> {
    if (!deps.connection.connected()) return { ok: false, detail: 'disconnected' };
    try {
      jsm ??= jetstreamManager(deps.nc, { timeout: deps.timeoutMs, checkAPI: false });
      const info = await within((await jsm).getAccountInfo(), deps.timeoutMs, 'JetStream');
      return { ok: true, detail: `connected to ${deps.nc.getServer()}, ${info.streams} streams` };
    } catch (err) {
      return { ok: false, detail: message(err) };
    }
  }

  async function checkRedis(): Promise<Check> {
    try {
      const pong = await within(deps.redis.ping(), deps.timeoutMs, 'Redis');
      return pong === 'PONG' ? { ok: true, detail: 'PONG' } : { ok: false, detail: pong };
    } catch (err) {
      return { ok: false, detail: message(err) };
    }
  }

  app.get('/healthz', (_request, reply) => reply.code(200).send({ ok: true }));

  app.get('/readyz', async (_request, reply) => {
    const [nats, redis] = await Promise.all([checkNats(), checkRedis()]);
    const ok = nats.ok;
    return reply.code(ok ? 200 : 503).send({ ok, degraded: !redis.ok, checks: { nats, redis } });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await deps.registry.metrics();
    return reply.code(200).type(deps.registry.contentType).send(text);
  });
}
