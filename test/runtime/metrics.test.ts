/**
 * The worker's metrics and probes, scraped over HTTP from an in-process worker (demo actor) on
 * a private NATS server and a fresh PostgreSQL database: counters carry the right values and
 * only closed-set labels; `/healthz` never touches a dependency, `/readyz` names what is down.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import {
  ActorKinds,
  DemoAdd,
  DemoAdded,
  DemoFail,
  DemoRemind,
  ErrorCodes,
  TimerFired,
  cmdSubject,
  evtSubject,
} from '../../contracts/index.ts';
import { demoActor } from '../../actors/demo/index.ts';
import { startWorkerHttp, type WorkerHttp } from '../../actors/http.ts';
import {
  createWorker,
  manualClock,
  type ActorDefinition,
  type Worker,
} from '../../actors/runtime/index.ts';
import {
  RuntimeMetricNames as M,
  UNDECODED_TYPE,
  createRuntimeMetrics,
} from '../../actors/runtime/metrics.ts';
import {
  demoStates,
  demoWorker,
  eventually,
  publish,
  publishAdds,
  startRuntimeEnv,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

let env: RuntimeEnv;
let registry: Registry;
let http: WorkerHttp;
let worker: Worker | undefined;

beforeEach(async () => {
  env = await startRuntimeEnv();
  registry = new Registry();
  http = await startWorkerHttp({
    nc: env.nc,
    knex: env.db.knex,
    registry,
    log: env.log,
    port: 0,
    host: '127.0.0.1',
    timeoutMs: 500,
  });
});
afterEach(async () => {
  await worker?.stop();
  worker = undefined;
  await http.close();
  await env.dispose();
});

async function get(path: string): Promise<{ status: number; body: string; type: string }> {
  const res = await fetch(`http://127.0.0.1:${http.port}${path}`);
  return {
    status: res.status,
    body: await res.text(),
    type: res.headers.get('content-type') ?? '',
  };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text → samples (comments dropped). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample with this name and (at least) these labels; 0 when absent. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  expect(hits.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return hits[0]?.value ?? 0;
}

async function scrape(): Promise<Sample[]> {
  const r = await get('/metrics');
  expect(r.status).toBe(200);
  expect(r.type).toContain('text/plain');
  return parse(r.body);
}

describe('worker metrics over /metrics', () => {
  it('counts handled messages, dead letters, parking, timers and batches with closed-set labels', async () => {
    const start = new Date('2030-01-01T00:00:00.000Z');
    const clock = manualClock(start);
    worker = createWorker({
      nc: env.nc,
      db: env.db,
      log: env.log,
      clock,
      actors: [demoActor as unknown as ActorDefinition],
      metrics: createRuntimeMetrics(registry),
      timerPollMs: 50,
      parkPollMs: 50,
      outboxSweepMs: 100,
    });
    await worker.start();

    const N = 5;
    await publishAdds(env.js, 'player-4711', 1, N);
    await env.js.publish(cmdSubject(ActorKinds.demo, 'player-4711', 'add'), 'not json', {
      msgID: 'garbage-1',
    });
    // Fails once (parked, acked), then succeeds when the drain loop retries it.
    await publish(env.js, 'player-4712', 'fail', DemoFail, { mode: 'retryable', times: 1 }, 'f1');
    const dueAt = new Date(start.getTime() + 1_000);
    await publish(
      env.js,
      'player-4713',
      'remind',
      DemoRemind,
      {
        name: 'idle',
        at: dueAt.toISOString(),
      },
      'r1',
    );
    await eventually('timer stored', async () => {
      const rows = await env.db.knex('rt_timer').count<{ c: string }[]>({ c: '*' });
      return rows[0]!.c === '1';
    });
    // Due 1 s after `start`, it fires 7 s late by the worker's clock.
    clock.advance(8_000);

    await eventually('everything handled', async () => {
      const s = await scrape();
      const handled = (type: string, outcome: string): number =>
        value(s, M.messagesHandled, { actor: 'demo', type, outcome });
      return (
        handled(DemoAdd.type, 'ok') === N &&
        handled(UNDECODED_TYPE, 'dead') === 1 &&
        handled(DemoFail.type, 'ignored') === 1 &&
        handled(TimerFired.type, 'ok') === 1
      );
    });
    expect((await demoStates(env.db)).get('player-4711')?.count).toBe(N);

    const s = await scrape();
    const handled = (type: string, outcome: string): number =>
      value(s, M.messagesHandled, { actor: 'demo', type, outcome });
    expect(handled(DemoAdd.type, 'ok')).toBe(N);
    expect(handled(UNDECODED_TYPE, 'dead')).toBe(1);
    expect(handled(DemoFail.type, 'parked')).toBe(1);
    // It succeeded on its retry, changing nothing, and said so.
    expect(handled(DemoFail.type, 'ignored')).toBe(1);
    expect(handled(DemoFail.type, 'ok')).toBe(0);
    expect(handled(DemoRemind.type, 'ok')).toBe(1);
    expect(handled(TimerFired.type, 'ok')).toBe(1);

    expect(value(s, M.deadLetters, { actor: 'demo', code: ErrorCodes.invalidJson })).toBe(1);
    expect(value(s, M.parked, { actor: 'demo' })).toBe(1);
    expect(value(s, M.redeliveries, { actor: 'demo' })).toBe(0);
    expect(value(s, M.timersFired, { actor: 'demo' })).toBe(1);
    expect(value(s, `${M.timerLagSeconds}_count`, { actor: 'demo' })).toBe(1);
    expect(value(s, `${M.timerLagSeconds}_sum`, { actor: 'demo' })).toBe(7);
    expect(value(s, `${M.timerLagSeconds}_bucket`, { actor: 'demo', le: '5' })).toBe(0);
    expect(value(s, `${M.timerLagSeconds}_bucket`, { actor: 'demo', le: '10' })).toBe(1);

    // Deliveries from JetStream: N adds, the garbage, the fail, the remind and the firing.
    const deliveries = N + 4;
    expect(value(s, `${M.handleSeconds}_count`, { actor: 'demo' })).toBe(deliveries);
    expect(value(s, `${M.batchSize}_sum`)).toBe(deliveries);
    // Every batch's transaction is timed, once.
    expect(value(s, `${M.batchSeconds}_count`)).toBe(value(s, `${M.batchSize}_count`));
    expect(value(s, `${M.batchSeconds}_sum`)).toBeGreaterThan(0);
    expect(value(s, M.transactionsFailed)).toBe(0);

    await eventually('samplers ran with nothing left behind', async () => {
      const t = await scrape();
      return (
        t.some((x) => x.name === M.outboxLagSeconds) &&
        value(t, M.parkingLotDepth, { actor: 'demo' }) === 0 &&
        t.some((x) => x.name === M.parkingLotDepth)
      );
    });

    // Labels come from closed sets: no key, player or message id ever becomes a series.
    const text = (await get('/metrics')).body;
    for (const id of ['player-4711', 'player-4712', 'player-4713', 'garbage-1', 'idle', 'r1']) {
      expect(text).not.toContain(id);
    }
  });
});

describe('outbox samples', () => {
  it('reports the age of the oldest unpublished outbox row and counts rows the sweeper republished', async () => {
    // Left behind 60 s ago by a publisher that died: one the sweeper can publish, and one no
    // stream captures, which stays behind and keeps the lag growing.
    const old = env.db.knex.raw(`now() - interval '60 seconds'`);
    const row = (subject: string) => ({
      subject,
      msg_type: DemoAdded.type,
      headers: JSON.stringify({}),
      data: Buffer.from(DemoAdded.encode({ key: 'k', n: 1, total: 1 })),
      created_at: old,
    });
    await env.db
      .knex('rt_outbox')
      .insert([row(evtSubject(ActorKinds.demo, 'k', 'added')), row('respawn.unrouted.k')]);
    worker = demoWorker(env, {
      metrics: createRuntimeMetrics(registry),
      outboxSweepMs: 100,
    });
    await worker.start();
    await eventually('sweeper republished the publishable row', async () => {
      const s = await scrape();
      return value(s, M.outboxRepublished) === 1;
    });
    const lag = value(await scrape(), M.outboxLagSeconds);
    expect(lag).toBeGreaterThanOrEqual(60);
    expect(lag).toBeLessThan(120);
  });
});

describe('worker probes', () => {
  it('is ready with NATS and PostgreSQL up', async () => {
    const r = await get('/readyz');
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body) as { ok: boolean; checks: Record<string, { ok: boolean }> };
    expect(body.ok).toBe(true);
    expect(body.checks.nats?.ok).toBe(true);
    expect(body.checks.postgres?.ok).toBe(true);
  });

  it('stays alive but not ready when NATS is down, and names NATS', async () => {
    // Whether or not the client has noticed yet, the check fails (disconnected, or no PONG).
    await env.nats.stop();
    const health = await get('/healthz');
    expect(health.status).toBe(200);

    const ready = await get('/readyz');
    expect(ready.status).toBe(503);
    const body = JSON.parse(ready.body) as {
      ok: boolean;
      checks: Record<string, { ok: boolean; detail: string }>;
    };
    expect(body.ok).toBe(false);
    expect(body.checks.nats?.ok).toBe(false);
    expect(body.checks.nats?.detail).toMatch(/^NATS/);
    expect(body.checks.postgres?.ok).toBe(true);
  });
});
