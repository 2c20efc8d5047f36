/**
 * Top-ups end to end on real services: the billing actor in a worker, the Razorpay effects
 * runner calling the real SDK against the Razorpay fake, signed webhooks from the fake through
 * a stand-in for the gateway's route into RESPAWN_IN, and the ingress router turning them
 * into billing commands. Money is credited exactly once per captured payment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BillingPaymentEvent,
  BillingPaymentHeld,
  BillingTopup,
  RAZORPAY_INGRESS_CONSUMER,
  RazorpayCreateLink,
  Streams,
  TelegramSend,
  outRazorpaySubject,
} from '../../contracts/index.ts';
import { createRazorpayIngress, type RazorpayIngress } from '../../actors/ingress/razorpay.ts';
import {
  listDeadLetters,
  manualClock,
  type ManualClock,
  type Worker,
} from '../../actors/runtime/index.ts';
import {
  createRazorpayClient,
  createRazorpayEffects,
  type RazorpayEffects,
} from '../../gateway/razorpay/index.ts';
import {
  startRazorpayFake,
  type FakeLink,
  type RazorpayFake,
} from '../../deploy/fakes/razorpay/index.ts';
import { eventually, quietLog } from '../support/runtime-env.ts';
import {
  OUT,
  billingState,
  expectBalancesMatchLedger,
  ledger,
  startBillingEnv,
  startBillingWorker,
  startWebhookReceiver,
  stored,
  telegramTo,
  toBilling,
  type BillingEnv,
  type WebhookReceiver,
} from './support.ts';

const KEY = { keyId: 'rzp_test_Fake0000000001', keySecret: 'fake-key-secret' };
const WEBHOOK_SECRET = 'fake-webhook-secret';
const MIN = 60_000;

let env: BillingEnv;
let fake: RazorpayFake;
let receiver: WebhookReceiver;
let ingress: RazorpayIngress;
let effects: RazorpayEffects;
let worker: Worker;
let clock: ManualClock;

beforeAll(async () => {
  env = await startBillingEnv();
  receiver = await startWebhookReceiver(env, WEBHOOK_SECRET);
  fake = await startRazorpayFake({
    ...KEY,
    webhookSecret: WEBHOOK_SECRET,
    webhookUrl: receiver.url,
  });
  clock = manualClock(new Date());
  worker = await startBillingWorker(env, clock, {
    reconcileAfterMs: 15 * MIN,
    reconcileEveryMs: 30 * MIN,
    linkTtlMs: 60 * MIN,
  });
  ingress = createRazorpayIngress({ nc: env.nc, log: quietLog(), retryDelayMs: 100 });
  await ingress.start();
  effects = createRazorpayEffects({
    nc: env.nc,
    payments: createRazorpayClient({ ...KEY, baseUrl: fake.url, timeoutMs: 2_000 }),
    log: quietLog(),
    backoff: { baseMs: 50, maxMs: 200 },
  });
  await effects.start();
});

afterAll(async () => {
  await effects.stop();
  await ingress.stop();
  await worker.stop();
  await receiver.stop();
  await fake.stop();
  await env.dispose();
});

/** The player asks for a top-up; returns the link the fake holds once billing sent its URL. */
async function requestTopup(
  player: string,
  requestId: string,
  amountPaise: number,
): Promise<FakeLink> {
  await toBilling(
    env,
    player,
    'topup',
    BillingTopup,
    { requestId, chatId: player, amountPaise },
    `tu-${player}-${requestId}`,
  );
  let url: string | undefined;
  await eventually('the payment link reaches the player', async () => {
    const sends = await stored(env, OUT, telegramTo(player), TelegramSend);
    url = sends.find((s) => s.editKey === `topup:${requestId}` && s.url !== undefined)?.url;
    return url !== undefined;
  });
  const link = fake.link(url!.split('/pay/')[1]!);
  expect(link).toBeDefined();
  return link!;
}

const credits = async (player: string) =>
  (await ledger(env.db, player)).filter((r) => r.reason === 'topup');

async function addedMessages(player: string): Promise<number> {
  const sends = await stored(env, OUT, telegramTo(player), TelegramSend);
  return sends.filter((s) => s.text.includes(' added.')).length;
}

/** Everything stored on RESPAWN_IN has been routed (acked or dead-lettered). */
async function ingressDrained(): Promise<void> {
  await eventually('the ingress router caught up', async () => {
    const ci = await env.jsm.consumers.info(Streams.ingress.name, RAZORPAY_INGRESS_CONSUMER);
    return ci.num_pending === 0 && ci.num_ack_pending === 0;
  });
}

async function inboxHas(msgIds: string[]): Promise<boolean> {
  const rows = (await env.db
    .knex('rt_inbox')
    .select('msg_id')
    .where({ actor: 'billing' })
    .whereIn('msg_id', msgIds)) as { msg_id: string }[];
  return rows.length === msgIds.length;
}

describe('a top-up through Razorpay', () => {
  it('is credited once, whatever the number and order of its webhooks', async () => {
    const link = await requestTopup('101', 'r1', 50_000);
    expect(link).toMatchObject({
      amount: 50_000,
      currency: 'INR',
      notes: { player_id: '101', topup_id: 'r1' },
    });

    // payment.captured first, then payment_link.paid (Razorpay's usual order).
    const paid = await fake.pay(link.id, { order: 'captured-first' });
    expect(paid.deliveries.map((d) => [d.event, d.status])).toEqual([
      ['payment.captured', 200],
      ['payment_link.paid', 200],
    ]);
    await eventually('credited', async () => (await credits('101')).length === 1);

    // The same webhook five more times with its own event id (JetStream drops them), and five
    // times with fresh event ids, as retries would look once the de-duplication window passed.
    const linkPaid = paid.events.find((e) => e.event === 'payment_link.paid')!;
    for (let i = 0; i < 5; i++) expect((await fake.deliver(linkPaid.eventId)).status).toBe(200);
    for (let i = 0; i < 5; i++) {
      expect((await fake.deliver(linkPaid.eventId, { freshEventId: true })).status).toBe(200);
    }
    await ingressDrained();
    // And billing itself sees the same fact again under new message ids (beyond any window).
    const late = ['late-1', 'late-2', 'late-3', 'late-4', 'late-5'];
    for (const id of late) {
      await toBilling(
        env,
        '101',
        'payment_event',
        BillingPaymentEvent,
        {
          event: 'payment_link.paid',
          topupId: 'r1',
          paymentId: paid.paymentId,
          linkId: link.id,
          amountPaise: 50_000,
          currency: 'INR',
        },
        id,
      );
    }
    await eventually('late repeats handled', () => inboxHas(late));

    expect(await credits('101')).toEqual([
      expect.objectContaining({ idempotency_key: `topup:${paid.paymentId}`, amount_paise: 50_000 }),
    ]);
    expect((await billingState(env.db, '101'))!.balancePaise).toBe(50_000);
    expect(await addedMessages('101')).toBe(1);

    // A second top-up whose payment_link.paid arrives before payment.captured.
    const second = await requestTopup('101', 'r2', 25_000);
    await fake.pay(second.id, { order: 'paid-first' });
    await eventually('second credited', async () => (await credits('101')).length === 2);
    await ingressDrained();
    expect((await credits('101')).map((r) => r.amount_paise)).toEqual([50_000, 25_000]);
    expect((await billingState(env.db, '101'))!.balancePaise).toBe(75_000);
    await expectBalancesMatchLedger(env.db);
  });

  it('holds a payment whose amount does not match its top-up, and tells nobody it succeeded', async () => {
    const link = await requestTopup('102', 'r1', 50_000);
    const paid = await fake.pay(link.id, { amountPaise: 40_000 });
    await eventually('held for an operator', async () => {
      const rows = (await env.db.knex('billing_hold').select('*').where({ player_id: '102' })) as {
        reason: string;
        payment_id: string;
        amount_paise: string;
        expected_amount_paise: string;
      }[];
      return (
        rows.length === 1 &&
        rows[0]!.reason === 'amount_mismatch' &&
        rows[0]!.payment_id === paid.paymentId &&
        Number(rows[0]!.amount_paise) === 40_000 &&
        Number(rows[0]!.expected_amount_paise) === 50_000
      );
    });
    await ingressDrained();
    await eventually('operators told on the event stream', async () => {
      const held = await stored(
        env,
        Streams.events.name,
        'respawn.billing.102.evt.payment_held',
        BillingPaymentHeld,
      );
      return held.length === 1;
    });
    expect(await credits('102')).toEqual([]);
    expect(await addedMessages('102')).toBe(0);
    await expectBalancesMatchLedger(env.db);
  });

  it('dead-letters webhooks it cannot use, with a reason, and keeps crediting the next', async () => {
    const before = (await listDeadLetters(env.jsm, { prefix: 'respawn.dlq.razorpay' })).length;
    await fake.sendRaw('{"not json');
    await fake.sendRaw(
      JSON.stringify({
        entity: 'event',
        event: 'order.paid',
        contains: [],
        payload: {},
        created_at: 1,
      }),
    );
    await fake.sendRaw(
      JSON.stringify({
        entity: 'event',
        event: 'payment.captured',
        contains: ['payment'],
        payload: {
          payment: {
            entity: {
              id: 'pay_NoNotes000001',
              amount: 100,
              currency: 'INR',
              status: 'captured',
              notes: [],
            },
          },
        },
        created_at: 1,
      }),
    );
    // A forged signature never gets past the gateway: nothing is published.
    expect((await fake.sendRaw('{}', { signature: 'f'.repeat(64) })).status).toBe(401);

    await eventually('three dead letters', async () => {
      return (
        (await listDeadLetters(env.jsm, { prefix: 'respawn.dlq.razorpay' })).length === before + 3
      );
    });
    const dls = (await listDeadLetters(env.jsm, { prefix: 'respawn.dlq.razorpay' })).slice(before);
    expect(dls.map((d) => d.code).sort()).toEqual(['invalid_json', 'unknown_type', 'unroutable']);
    for (const d of dls) {
      expect(d.reason.length).toBeGreaterThan(0);
      expect(d.originalSubject).toBe('respawn.in.razorpay');
    }
    expect(new TextDecoder().decode(dls.find((d) => d.code === 'invalid_json')!.data)).toBe(
      '{"not json',
    );

    const link = await requestTopup('103', 'r1', 10_000);
    await fake.pay(link.id);
    await eventually('credited after the garbage', async () => (await credits('103')).length === 1);
  });

  it('survives a Razorpay outage while creating the link: retried, one link, one credit', async () => {
    fake.failNextApi({ status: 503, times: 2 });
    const link = await requestTopup('104', 'r1', 20_000);
    expect(fake.links().filter((l) => l.notes.player_id === '104')).toHaveLength(1);
    const creates = fake
      .apiCalls()
      .filter((c) => c.method === 'POST' && c.path === '/v1/payment_links');
    expect(creates.slice(-3).map((c) => c.status)).toEqual([503, 503, 200]);

    // The same effect again (its first report lost): Razorpay refuses the reference id, the
    // runner finds the existing link and reports it; still one link, billing unmoved.
    const effect = RazorpayCreateLink.encode({
      playerId: '104',
      topupId: 'r1',
      referenceId: link.reference_id,
      amountPaise: 20_000,
      currency: 'INR',
      description: 'again',
      expireBy: new Date(Date.now() + 60 * MIN).toISOString(),
    });
    await env.js.publish(outRazorpaySubject(), effect, { msgID: 'effect-again' });
    await eventually('the repeated effect reported', () => inboxHas(['rzp-fx-effect-again']));
    expect(fake.links().filter((l) => l.notes.player_id === '104')).toHaveLength(1);
    expect(
      fake.apiCalls().filter((c) => c.method === 'POST' && c.status === 400).length,
    ).toBeGreaterThan(0);
    await fake.pay(link.id);
    await eventually('credited', async () => (await credits('104')).length === 1);
    await expectBalancesMatchLedger(env.db);
  });

  it('makes one payment link for a triple press of the same amount, and credits it once', async () => {
    // Three presses of ₹500, three Telegram updates: three requests, as fast as they come.
    for (const r of ['tg-8007', 'tg-8008', 'tg-8009']) {
      await toBilling(
        env,
        '107',
        'topup',
        BillingTopup,
        { requestId: r, chatId: '107', amountPaise: 50_000 },
        `tu-107-${r}`,
      );
    }
    await eventually('all three requests handled', () =>
      inboxHas(['tu-107-tg-8007', 'tu-107-tg-8008', 'tu-107-tg-8009']),
    );
    await eventually('the payment link reaches the player', async () => {
      const sends = await stored(env, OUT, telegramTo('107'), TelegramSend);
      return sends.some((s) => s.url !== undefined);
    });
    const links = fake.links().filter((l) => l.notes.player_id === '107');
    expect(links).toHaveLength(1);
    expect(links[0]!.notes.topup_id).toBe('tg-8007');
    const sends = await stored(env, OUT, telegramTo('107'), TelegramSend);
    expect(new Set(sends.filter((s) => s.url !== undefined).map((s) => s.url))).toEqual(
      new Set([links[0]!.short_url]),
    );
    expect(Object.keys((await billingState(env.db, '107'))!.topups)).toEqual(['tg-8007']);

    const paid = await fake.pay(links[0]!.id);
    await eventually('credited', async () => (await credits('107')).length === 1);
    for (const e of paid.events)
      expect((await fake.deliver(e.eventId, { freshEventId: true })).status).toBe(200);
    await ingressDrained();
    await eventually('repeats handled', async () => {
      const n = (
        await env.db
          .knex('rt_inbox')
          .count<{ c: string }[]>({ c: '*' })
          .where({ actor: 'billing' })
          .where('msg_id', 'like', `rzp-${paid.paymentId}-%`)
      )[0]!.c;
      return Number(n) === 2;
    });
    expect(await credits('107')).toEqual([
      expect.objectContaining({ idempotency_key: `topup:${paid.paymentId}`, amount_paise: 50_000 }),
    ]);
    expect(await addedMessages('107')).toBe(1);
    // The credit is a new message; the link message is edited to say it is paid.
    const after = await stored(env, OUT, telegramTo('107'), TelegramSend);
    expect(after.find((s) => s.text.includes(' added.'))!.editKey).toBeUndefined();
    expect(after.at(-2)).toMatchObject({ editKey: 'topup:tg-8007' });
    expect(after.at(-2)!.url).toBeUndefined();
    await expectBalancesMatchLedger(env.db);
  });

  it('tells the player when Razorpay refuses to create the link', async () => {
    fake.failNextApi({ status: 400, times: 1 });
    await toBilling(
      env,
      '106',
      'topup',
      BillingTopup,
      { requestId: 'r1', chatId: '106', amountPaise: 30_000 },
      'tu-106-r1',
    );
    await eventually('the player is told', async () => {
      const sends = await stored(env, OUT, telegramTo('106'), TelegramSend);
      return sends.some((s) => s.text.includes('could not be created'));
    });
    const s = (await billingState(env.db, '106'))!;
    expect(s.topups.r1!.status).toBe('failed');
    expect(s.timers).toEqual({});
    expect(fake.links().filter((l) => l.notes.player_id === '106')).toEqual([]);
  });

  it('reconciles a captured payment whose webhook never came, and credits it once', async () => {
    const link = await requestTopup('105', 'r1', 50_000);
    const paid = await fake.pay(link.id, { deliver: false });
    expect(paid.deliveries).toEqual([]);
    expect(await credits('105')).toEqual([]);

    clock.advance(16 * MIN);
    await eventually(
      'credited by reconciliation',
      async () => (await credits('105')).length === 1,
      20_000,
    );
    const fetches = fake
      .apiCalls()
      .filter((c) => c.method === 'GET' && c.path === `/v1/payment_links/${link.id}`);
    expect(fetches.length).toBeGreaterThanOrEqual(1);

    // The webhook finally arrives (Razorpay retried it): nothing more is credited.
    for (const e of paid.events) expect((await fake.deliver(e.eventId)).status).toBe(200);
    await ingressDrained();
    await eventually('late webhook handled', async () => {
      const n = (
        await env.db
          .knex('rt_inbox')
          .count<{ c: string }[]>({ c: '*' })
          .where({ actor: 'billing' })
          .where('msg_id', 'like', `rzp-${paid.paymentId}-%`)
      )[0]!.c;
      return Number(n) === 2;
    });
    expect(await credits('105')).toHaveLength(1);
    expect(await addedMessages('105')).toBe(1);
    const s = (await billingState(env.db, '105'))!;
    expect(s.balancePaise).toBe(50_000);
    expect(s.timers).toEqual({});
    expect(await expectBalancesMatchLedger(env.db)).toBeGreaterThanOrEqual(5);
  });
});
