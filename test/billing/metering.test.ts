/**
 * Metering on real services: settlement entries written by durable timers on a controlled
 * clock, the eviction gap never charged, and a session charged exactly once across worker
 * processes killed with SIGKILL mid-session.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BillingAdjust,
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
} from '../../contracts/index.ts';
import { manualClock, type Worker } from '../../actors/runtime/index.ts';
import { eventually } from '../support/runtime-env.ts';
import {
  billingState,
  exited,
  expectBalancesMatchLedger,
  ledger,
  spawnBillingWorker,
  startBillingEnv,
  startBillingWorker,
  toBilling,
  type BillingEnv,
} from './support.ts';

const MIN = 60_000;
const SPOT = 3_000; // paise per hour: 47 m 12 s = 2832 s → 2832 × 3000 / 3600 = 2360 paise

let env: BillingEnv;
let workers: Worker[] = [];

beforeEach(async () => {
  env = await startBillingEnv();
});
afterEach(async () => {
  for (const w of workers) await w.stop();
  workers = [];
  await env.dispose();
});

const usage = async (player: string) =>
  (await ledger(env.db, player)).filter((r) => r.reason === 'usage');
const charged = async (player: string) =>
  -(await usage(player)).reduce((s, r) => s + r.amount_paise, 0);

async function fund(player: string, paise: number): Promise<void> {
  await toBilling(
    env,
    player,
    'adjust',
    BillingAdjust,
    { adjustmentId: 'seed', amountPaise: paise, note: 'test credit', requestedBy: 'operator' },
    `seed-${player}`,
  );
}

describe('metering with a controlled clock', () => {
  it('charges a 47 m 12 s Spot session exactly, in settlements every 5 minutes', async () => {
    const t0 = new Date('2030-06-01T12:00:00.000Z');
    const clock = manualClock(t0);
    workers.push(await startBillingWorker(env, clock, { settleIntervalMs: 5 * MIN }));
    const at = (ms: number) => new Date(t0.getTime() + ms);
    await fund('201', 100_000);
    await toBilling(
      env,
      '201',
      'meter_open',
      BillingMeterOpen,
      {
        sessionId: 's201',
        chatId: '201',
        tier: 'spot',
        pricePerHourPaise: SPOT,
        at: t0.toISOString(),
      },
      'open-s201',
    );
    await eventually(
      'meter open',
      async () => (await billingState(env.db, '201'))?.meters.s201 !== undefined,
    );
    for (let k = 1; k <= 9; k++) {
      clock.set(at(k * 5 * MIN));
      await eventually(`settlement ${k}`, async () => (await usage('201')).length === k);
    }
    expect(await charged('201')).toBe(9 * 250);
    await toBilling(
      env,
      '201',
      'meter_close',
      BillingMeterClose,
      { sessionId: 's201', at: at(47 * MIN + 12_000).toISOString(), reason: 'player' },
      'close-s201',
    );
    await eventually(
      'meter closed',
      async () => (await billingState(env.db, '201'))?.meters.s201 === undefined,
    );
    expect(await charged('201')).toBe(2360);
    // Nine settlements of 250 paise, and the close adds the last 2 m 12 s (110 paise).
    expect((await usage('201')).map((r) => r.idempotency_key)).toEqual(
      Array.from({ length: 10 }, (_, i) => `usage:201:s201:${i + 1}`),
    );
    expect((await billingState(env.db, '201'))!.balancePaise).toBe(100_000 - 2360);
    await expectBalancesMatchLedger(env.db);
  });

  it('does not charge the time between an eviction and the resume', async () => {
    const t0 = new Date('2030-06-01T12:00:00.000Z');
    const clock = manualClock(t0);
    workers.push(await startBillingWorker(env, clock, { settleIntervalMs: 5 * MIN }));
    const at = (ms: number) => new Date(t0.getTime() + ms).toISOString();
    await fund('202', 100_000);
    await toBilling(
      env,
      '202',
      'meter_open',
      BillingMeterOpen,
      { sessionId: 's202', chatId: '202', tier: 'spot', pricePerHourPaise: SPOT, at: at(0) },
      'open-s202',
    );
    await eventually(
      'meter open',
      async () => (await billingState(env.db, '202'))?.meters.s202 !== undefined,
    );
    clock.set(new Date(at(5 * MIN)));
    await eventually('first settlement', async () => (await usage('202')).length === 1);
    clock.set(new Date(at(11 * MIN)));
    await eventually('second settlement', async () => (await charged('202')) === 550);
    // Evicted at 10:00 (the notice), reported after the 11:00 settlement had run.
    await toBilling(
      env,
      '202',
      'meter_pause',
      BillingMeterPause,
      { sessionId: 's202', at: at(10 * MIN) },
      'pause-s202',
    );
    await eventually(
      'paused',
      async () => (await billingState(env.db, '202'))?.meters.s202?.runningSince === null,
    );
    clock.set(new Date(at(40 * MIN)));
    await toBilling(
      env,
      '202',
      'meter_resume',
      BillingMeterResume,
      { sessionId: 's202', tier: 'on_demand', pricePerHourPaise: 9_000, at: at(40 * MIN) },
      'resume-s202',
    );
    await eventually(
      'resumed',
      async () => (await billingState(env.db, '202'))?.meters.s202?.runningSince !== null,
    );
    clock.set(new Date(at(50 * MIN)));
    await toBilling(
      env,
      '202',
      'meter_close',
      BillingMeterClose,
      { sessionId: 's202', at: at(50 * MIN), reason: 'player' },
      'close-s202',
    );
    await eventually(
      'closed',
      async () => (await billingState(env.db, '202'))?.meters.s202 === undefined,
    );
    // 10 minutes of Spot (500) + 10 minutes of On-Demand (1500); the 30-minute gap is free.
    expect(await charged('202')).toBe(500 + 1500);
    await expectBalancesMatchLedger(env.db);
  });
});

describe('metering across worker crashes', () => {
  it('charges a 47 m 12 s session exactly once although two workers were killed with SIGKILL mid-session', async () => {
    const t0 = new Date();
    const at = (ms: number) => new Date(t0.getTime() + ms).toISOString();
    await fund('301', 100_000);
    await toBilling(
      env,
      '301',
      'meter_open',
      BillingMeterOpen,
      { sessionId: 's301', chatId: '301', tier: 'spot', pricePerHourPaise: SPOT, at: at(0) },
      'open-s301',
    );

    // Worker 1 opens the meter and dies.
    const first = spawnBillingWorker(env, 0);
    await eventually(
      'meter open',
      async () => (await billingState(env.db, '301'))?.meters.s301 !== undefined,
    );
    first.kill('SIGKILL');
    await exited(first);

    // Worker 2 runs 20 minutes later: the settle timer is due; it settles and dies at once.
    const second = spawnBillingWorker(env, 20 * MIN);
    await eventually('a settlement by worker 2', async () => (await usage('301')).length >= 1);
    second.kill('SIGKILL');
    await exited(second);

    // Worker 3 runs 35 minutes later and settles again; then the session ends at 47:12.
    const third = spawnBillingWorker(env, 35 * MIN);
    try {
      await eventually('a settlement by worker 3', async () => (await charged('301')) >= 35 * 50);
      await toBilling(
        env,
        '301',
        'meter_close',
        BillingMeterClose,
        { sessionId: 's301', at: at(47 * MIN + 12_000), reason: 'player' },
        'close-s301',
      );
      await eventually(
        'meter closed',
        async () => (await billingState(env.db, '301'))?.meters.s301 === undefined,
      );
    } finally {
      third.kill('SIGTERM');
      await exited(third);
    }

    const rows = await usage('301');
    expect(rows.length).toBeGreaterThanOrEqual(3);
    expect(rows.map((r) => r.idempotency_key)).toEqual(
      rows.map((_, i) => `usage:301:s301:${i + 1}`),
    );
    expect(await charged('301')).toBe(2360);
    expect((await billingState(env.db, '301'))!.balancePaise).toBe(100_000 - 2360);
    await expectBalancesMatchLedger(env.db);
  }, 90_000);
});
