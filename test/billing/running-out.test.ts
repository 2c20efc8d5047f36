/**
 * Running out of credit on real services and a controlled clock: durable warning timers at
 * 10, 5 and 1 minutes before the end, the session actor asked to stop at zero, and a top-up
 * before zero moving the stop away. Admission answers go to the session actor.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BillingAdjust,
  BillingAdmit,
  BillingMeterOpen,
  SessionAdmission,
  SessionStop,
  TelegramSend,
  commandStreamName,
} from '../../contracts/index.ts';
import { manualClock, type ManualClock, type Worker } from '../../actors/runtime/index.ts';
import { eventually } from '../support/runtime-env.ts';
import {
  OUT,
  expectBalancesMatchLedger,
  startBillingEnv,
  startBillingWorker,
  stored,
  telegramTo,
  toBilling,
  type BillingEnv,
} from './support.ts';

const MIN = 60_000;
const SPOT = 3_000; // 50 paise a minute
const t0 = new Date('2030-07-01T18:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const SESSION_CMD = commandStreamName('session');

let env: BillingEnv;
let worker: Worker;
let clock: ManualClock;

beforeAll(async () => {
  env = await startBillingEnv();
  clock = manualClock(t0);
  worker = await startBillingWorker(env, clock, { settleIntervalMs: 10 * MIN, minMinutes: 15 });
});
afterAll(async () => {
  await worker.stop();
  await env.dispose();
});

async function fund(player: string, paise: number, id: string): Promise<void> {
  await toBilling(
    env,
    player,
    'adjust',
    BillingAdjust,
    { adjustmentId: id, amountPaise: paise, note: 'credit', requestedBy: 'operator' },
    `${id}-${player}`,
  );
}

const warnings = async (player: string) =>
  (await stored(env, OUT, telegramTo(player), TelegramSend)).filter((m) => m.text.startsWith('⏳'));
const stops = (player: string) =>
  stored(env, SESSION_CMD, `respawn.session.${player}.cmd.stop`, SessionStop);

async function timerAt(player: string, name: string): Promise<string | undefined> {
  const row = (await env.db
    .knex('rt_timer')
    .first('fire_at')
    .where({ actor: 'billing', key: player, name })) as { fire_at: string | Date } | undefined;
  return row === undefined ? undefined : new Date(row.fire_at).toISOString();
}

describe('running out of credit', () => {
  it('warns at 10, 5 and 1 minutes before zero and stops at zero; a top-up before zero cancels the stop', async () => {
    for (const p of ['401', '402']) {
      await fund(p, 30 * 50, 'seed');
      await toBilling(
        env,
        p,
        'meter_open',
        BillingMeterOpen,
        {
          sessionId: `s${p}`,
          chatId: p,
          tier: 'spot',
          pricePerHourPaise: SPOT,
          at: t0.toISOString(),
        },
        `open-${p}`,
      );
    }
    await eventually(
      'stops planned',
      async () => (await timerAt('402', 'out_of_credit')) === at(30 * MIN).toISOString(),
    );

    clock.set(at(20 * MIN));
    await eventually(
      '10-minute warnings',
      async () => (await warnings('401')).length === 1 && (await warnings('402')).length === 1,
    );
    expect((await warnings('401'))[0]!.text).toMatch(/About 10 minutes of play left/);

    clock.set(at(25 * MIN));
    await eventually(
      '5-minute warnings',
      async () => (await warnings('401')).length === 2 && (await warnings('402')).length === 2,
    );

    // Player 402 tops up an hour's worth at 27:00: the stop moves to 90:00.
    clock.set(at(27 * MIN));
    await fund('402', 60 * 50, 'topup');
    await eventually(
      'stop moved',
      async () => (await timerAt('402', 'out_of_credit')) === at(90 * MIN).toISOString(),
    );

    clock.set(at(29 * MIN));
    await eventually('1-minute warning', async () => (await warnings('401')).length === 3);
    expect((await warnings('401'))[2]!.text).toMatch(/About 1 minute of play left/);

    clock.set(at(30 * MIN));
    await eventually('stop requested', async () => (await stops('401')).length === 1);
    expect((await stops('401'))[0]).toMatchObject({
      requestedBy: 'system',
      reason: 'out_of_credit',
    });

    // Every timer due by now has been handled (fired timers are deleted or set again later).
    await eventually('due timers handled', async () => {
      const due = await env.db
        .knex('rt_timer')
        .count<{ c: string }[]>({ c: '*' })
        .where({ actor: 'billing' })
        .where('fire_at', '<=', at(30 * MIN));
      return Number(due[0]!.c) === 0;
    });
    expect(await stops('402')).toEqual([]);
    expect(await warnings('402')).toHaveLength(2);
    expect(await stops('401')).toHaveLength(1);
    await expectBalancesMatchLedger(env.db);
  });

  it('answers the session actor’s admission question from the balance', async () => {
    await fund('403', 15 * 50, 'seed');
    await toBilling(
      env,
      '403',
      'admit',
      BillingAdmit,
      { sessionId: 'a1', cheapestPricePerHourPaise: SPOT },
      'admit-403-1',
    );
    await toBilling(
      env,
      '404',
      'admit',
      BillingAdmit,
      { sessionId: 'a2', cheapestPricePerHourPaise: SPOT },
      'admit-404-1',
    );
    const answer = async (p: string) =>
      (await stored(env, SESSION_CMD, `respawn.session.${p}.cmd.admission`, SessionAdmission))[0];
    await eventually(
      'both answered',
      async () => (await answer('403')) !== undefined && (await answer('404')) !== undefined,
    );
    expect(await answer('403')).toMatchObject({
      sessionId: 'a1',
      allowed: true,
      balancePaise: 750,
      requiredPaise: 750,
    });
    expect(await answer('404')).toMatchObject({ sessionId: 'a2', allowed: false, balancePaise: 0 });
  });
});
