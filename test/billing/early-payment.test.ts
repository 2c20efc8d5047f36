/**
 * A payment delivered before its top-up request (the Razorpay and Telegram routers are
 * independent consumers: a replay into a deployment that lags can do this) is held, then
 * credited once when the request arrives, its hold marked resolved in PostgreSQL.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  BillingPaymentEvent,
  BillingTopup,
  RazorpayCreateLink,
  outRazorpaySubject,
} from '../../contracts/index.ts';
import { manualClock, type Worker } from '../../actors/runtime/index.ts';
import { eventually } from '../support/runtime-env.ts';
import {
  OUT,
  expectBalancesMatchLedger,
  ledger,
  startBillingEnv,
  startBillingWorker,
  stored,
  toBilling,
  type BillingEnv,
} from './support.ts';

let env: BillingEnv;
let worker: Worker;

beforeAll(async () => {
  env = await startBillingEnv();
  worker = await startBillingWorker(env, manualClock(new Date('2030-07-01T18:00:00.000Z')), {});
});
afterAll(async () => {
  await worker.stop();
  await env.dispose();
});

interface HoldRow {
  hold_key: string;
  reason: string;
  resolved_at: Date | null;
  resolution: string | null;
}

it('credits a payment that arrived before its top-up request, once, and resolves its hold', async () => {
  const player = '7001';
  await toBilling(
    env,
    player,
    'payment_event',
    BillingPaymentEvent,
    {
      event: 'payment.captured',
      topupId: 'tg-900',
      paymentId: 'pay_Early0000000001',
      amountPaise: 20_000,
      currency: 'INR',
    },
    'rzp-early-1',
  );
  await eventually('held as unknown_topup', async () => {
    const rows = (await env.db.knex('billing_hold').where({ player_id: player })) as HoldRow[];
    return rows.length === 1 && rows[0]!.reason === 'unknown_topup';
  });
  expect(await ledger(env.db, player)).toEqual([]);

  await toBilling(
    env,
    player,
    'topup',
    BillingTopup,
    { requestId: 'tg-900', chatId: player, amountPaise: 20_000 },
    'tg-900-topup',
  );
  await eventually('credited', async () => (await ledger(env.db, player)).length === 1);
  const [entry] = await ledger(env.db, player);
  expect(entry).toMatchObject({ amount_paise: 20_000, reason: 'topup' });
  const holds = (await env.db.knex('billing_hold').where({ player_id: player })) as HoldRow[];
  expect(holds).toHaveLength(1);
  expect(holds[0]!.resolved_at).not.toBeNull();
  expect(holds[0]!.resolution).toContain('credited');
  // Paid already: no payment link was asked of Razorpay.
  const links = (await stored(env, OUT, outRazorpaySubject(), RazorpayCreateLink)).filter(
    (l) => l.playerId === player,
  );
  expect(links).toEqual([]);

  // The same payment again (Razorpay retries beyond the de-duplication window): no credit.
  await toBilling(
    env,
    player,
    'payment_event',
    BillingPaymentEvent,
    {
      event: 'payment_link.paid',
      topupId: 'tg-900',
      paymentId: 'pay_Early0000000001',
      amountPaise: 20_000,
      currency: 'INR',
    },
    'rzp-early-2',
  );
  await eventually('the repeat handled', async () => {
    const r = await env.db
      .knex('rt_inbox')
      .where({ actor: 'billing', msg_id: 'rzp-early-2' })
      .select<{ msg_id: string }[]>('msg_id');
    return r.length === 1;
  });
  expect(await ledger(env.db, player)).toHaveLength(1);
  await expectBalancesMatchLedger(env.db);
});
