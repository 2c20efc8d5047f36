/**
 * The gateway when its dependencies fail: NATS hung or dead → 503 (Telegram retries), health
 * still answers, readiness says what is down; NATS back → the retried update is stored once.
 * Redis down → webhooks still served, limited from process memory; the gateway stays ready
 * (a Redis outage must not take every gateway out of service) and reports itself degraded.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Streams, ingressSubject } from '../../contracts/index.ts';
import { redisUrl } from '../harness/index.ts';
import { eventually, pauseProcess } from '../support/runtime-env.ts';
import { tcpRelay } from '../support/tcp-relay.ts';
import {
  counter,
  postUpdate,
  request,
  startBus,
  startGateway,
  stored,
  textUpdate,
  type Bus,
  type RunningTestGateway,
} from './support.ts';

let bus: Bus;
let gw: RunningTestGateway;

beforeAll(async () => {
  bus = await startBus();
  gw = await startGateway(bus);
});
afterAll(async () => {
  await gw.close();
  await bus.dispose();
});

const storedOnce = async (msgId: string) =>
  (await stored(bus.jsm, Streams.ingress.name, ingressSubject('telegram'))).filter(
    (m) => m.headers['Nats-Msg-Id'] === msgId,
  ).length;

describe('Redis unavailable', () => {
  it('stays ready, reports Redis down and degraded, and keeps serving webhooks when Redis goes away', async () => {
    // Redis unreachable for this gateway alone: the Redis other tests share keeps running.
    const target = new URL(redisUrl());
    const relay = await tcpRelay({ host: target.hostname, port: Number(target.port || 6379) });
    const redis = new Redis(relay.via(redisUrl()), { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
    const gateway = await startGateway(bus, { redis });
    try {
      const before = await request(gateway.url, '/readyz');
      expect(before.status).toBe(200);
      expect(before.body).toMatchObject({
        ok: true,
        degraded: false,
        checks: { nats: { ok: true }, redis: { ok: true, detail: 'PONG' } },
      });

      await relay.cut();
      await eventually(
        'the gateway sees Redis gone',
        () => Promise.resolve(redis.status !== 'ready'),
        5_000,
      );
      const ready = await request(gateway.url, '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({
        ok: true,
        degraded: true,
        checks: { nats: { ok: true }, redis: { ok: false } },
      });
      const r = await postUpdate(gateway.url, textUpdate(9051, 5, '/status'));
      expect(r.status).toBe(200);
      expect(await storedOnce('tg-9051')).toBe(1);
      expect(
        await counter(gateway.registry, 'respawn_gateway_ratelimit_store_errors_total', {
          limit: 'player',
        }),
      ).toBeGreaterThan(0);
      // Said once, by the limiter, as one JSON object with one `component`.
      const raw = gateway.logs
        .text()
        .split('\n')
        .filter((l) => l.includes('rate-limit store failed'));
      expect(raw).toHaveLength(1);
      expect(raw[0]!.match(/"component"/g)).toHaveLength(1);
      expect(raw[0]).toContain('"component":"ratelimit"');
    } finally {
      await gateway.close();
    }
  });

  it('keeps serving webhooks with in-memory limits, and is ready (degraded), when Redis is never reachable', async () => {
    const deadRedis = new Redis({
      port: 1,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    deadRedis.on('error', () => undefined);
    const degraded = await startGateway(bus, { redis: deadRedis });
    try {
      const r = await postUpdate(degraded.url, textUpdate(9001, 5, '/status'));
      expect(r.status).toBe(200);
      expect(await storedOnce('tg-9001')).toBe(1);
      expect(
        await counter(degraded.registry, 'respawn_gateway_ratelimit_store_errors_total', {
          limit: 'player',
        }),
      ).toBeGreaterThan(0);
      const ready = await request(degraded.url, '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({
        ok: true,
        degraded: true,
        checks: { nats: { ok: true }, redis: { ok: false } },
      });
    } finally {
      await degraded.close();
    }
  });
});

describe('NATS unavailable', () => {
  it('answers 503 while NATS hangs, and stores the retried update once when it is back', async () => {
    const update = textUpdate(9101, 5, '/play');
    await pauseProcess(bus.nats.pid);
    try {
      const started = Date.now();
      const r = await postUpdate(gw.url, update);
      expect(r.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(3_000);
      expect((await request(gw.url, '/healthz')).status).toBe(200);
      const ready = await request(gw.url, '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ checks: { nats: { ok: false } } });
    } finally {
      process.kill(bus.nats.pid, 'SIGCONT');
    }
    // Telegram retries the same update until it gets a 200.
    await eventually(
      'the retried update is accepted',
      async () => (await postUpdate(gw.url, update)).status === 200,
      10_000,
    );
    await postUpdate(gw.url, update);
    expect(await storedOnce('tg-9101')).toBe(1);
  });

  it('answers 503 at once while NATS is down, healthz stays 200, and the retry after restart is stored once', async () => {
    const update = textUpdate(9201, 5, '/stop');
    process.kill(bus.nats.pid, 'SIGKILL');
    await eventually(
      'the gateway sees NATS down',
      async () => (await request(gw.url, '/readyz')).status === 503,
      5_000,
    );
    const started = Date.now();
    const r = await postUpdate(gw.url, update);
    expect(r.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(400);
    expect((await request(gw.url, '/healthz')).status).toBe(200);
    const ready = await request(gw.url, '/readyz');
    expect(ready.body).toMatchObject({
      ok: false,
      checks: { nats: { ok: false, detail: 'disconnected' } },
    });
    expect(
      await counter(gw.registry, 'respawn_gateway_webhook_requests_total', {
        outcome: 'unavailable',
      }),
    ).toBeGreaterThan(0);

    await bus.nats.restart();
    await eventually(
      'the retried update is accepted',
      async () => (await postUpdate(gw.url, update)).status === 200,
      10_000,
    );
    await postUpdate(gw.url, update);
    expect(await storedOnce('tg-9201')).toBe(1);
    expect((await request(gw.url, '/readyz')).status).toBe(200);
  });
});
