/**
 * The worker's own vacuum (actors/runtime/vacuum.ts) against a real PostgreSQL: a runtime
 * table churned the way heartbeats churn `rt_timer` is vacuumed once its dead rows pass the
 * threshold, a quiet table is left alone, and a running worker does it by itself and says so
 * in its metrics. Dead-row counts come from PostgreSQL's statistics, which a backend publishes
 * within about a second, so the checks wait for them.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { RuntimeMetricNames, createRuntimeMetrics } from '../../actors/runtime/metrics.ts';
import { churnedTables, vacuumChurned } from '../../actors/runtime/vacuum.ts';
import {
  demoWorker,
  eventually,
  startRuntimeEnv,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

let env: RuntimeEnv;
beforeEach(async () => {
  env = await startRuntimeEnv();
});
afterEach(async () => {
  await env.dispose();
});

interface Stats {
  dead: number;
  vacuumed: boolean;
  lastVacuum: Date | null;
}

async function stats(table: string): Promise<Stats> {
  const row = await env.db.knex
    .select<
      { n_dead_tup: string | number; last_vacuum: Date | string | null }[]
    >('n_dead_tup', 'last_vacuum')
    .from('pg_stat_user_tables')
    .where({ relname: table })
    .first();
  if (row === undefined) throw new Error(`no statistics for ${table}`);
  return {
    dead: Number(row.n_dead_tup),
    vacuumed: row.last_vacuum !== null,
    lastVacuum: row.last_vacuum === null ? null : new Date(row.last_vacuum),
  };
}

/** 40 session timers moved `moves` times each, as heartbeats move them: 40 × moves dead rows. */
async function churnTimers(moves: number): Promise<void> {
  const knex = env.db.knex;
  const fireAt = new Date(Date.now() + 3_600_000);
  await knex('rt_timer').insert(
    Array.from({ length: 40 }, (_, i) => ({
      actor: 'demo',
      key: `p${i}`,
      name: 'heartbeat-lost',
      fire_at: fireAt,
    })),
  );
  for (let m = 0; m < moves; m++) {
    await knex('rt_timer').update({ fire_at: knex.raw("fire_at + interval '1 second'") });
  }
}

const policy = { minDead: 1_000, deadRatio: 0.2 };

describe('vacuum of churned tables', () => {
  it('vacuums a table whose dead rows passed the threshold and leaves a quiet one alone', async () => {
    await churnTimers(60);
    await env.db.knex('rt_inbox').insert({
      actor: 'demo',
      msg_id: 'one',
      outcome: 'ok',
      handled_at: new Date(),
    });
    await eventually(
      'the churn in the statistics',
      async () => (await stats('rt_timer')).dead >= 2_400,
    );
    expect(await churnedTables(env.db.knex, policy)).toEqual([
      { table: 'rt_timer', dead: expect.any(Number) as number },
    ]);
    // Below the threshold nothing is done.
    expect(await vacuumChurned(env.db.knex, { minDead: 1_000_000, deadRatio: 0.2 })).toEqual([]);
    expect((await stats('rt_timer')).vacuumed).toBe(false);

    const done = await vacuumChurned(env.db.knex, policy);
    expect(done.map((v) => v.table)).toEqual(['rt_timer']);
    expect(done[0]!.dead).toBeGreaterThanOrEqual(2_400);
    await eventually('rt_timer vacuumed', async () => {
      const s = await stats('rt_timer');
      return s.vacuumed && s.dead < 100;
    });
    expect((await stats('rt_inbox')).vacuumed).toBe(false);
    // Its 40 live timers are all still there.
    const live = await env.db.knex('rt_timer').count<{ n: string }[]>({ n: '*' });
    expect(Number(live[0]?.n)).toBe(40);
  });

  it('a running worker vacuums a churned table by itself and records it', async () => {
    const registry = new Registry();
    const worker = demoWorker(env, {
      metrics: createRuntimeMetrics(registry),
      vacuumPollMs: 200,
    });
    await worker.start();
    try {
      const before = (await stats('rt_timer')).lastVacuum?.getTime() ?? 0;
      await churnTimers(60);
      // The first test vacuumed the table already: this one waits for a vacuum after it. (How
      // many dead rows a vacuum can remove is PostgreSQL's to say: a snapshot held elsewhere in
      // the database keeps them; the first test checks the effect on a quiet database.)
      await eventually('the worker vacuumed rt_timer', async () => {
        const s = await stats('rt_timer');
        return (s.lastVacuum?.getTime() ?? 0) > before;
      });
      const metric = await registry.getSingleMetricAsString(RuntimeMetricNames.vacuumSeconds);
      expect(metric).toMatch(/respawn_actor_vacuum_seconds_count\{table="rt_timer"\} [1-9]/);
    } finally {
      await worker.stop();
    }
  });
});
