import { describe, expect, it } from 'vitest';
import {
  BillingAdjust,
  BillingAdmit,
  BillingBalance,
  BillingHistory,
  BillingLinkStatus,
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  BillingPaymentEvent,
  BillingPaymentHeld,
  BillingPaymentLinkCreated,
  BillingPaymentLinkFailed,
  BillingTopup,
  ErrorCodes,
  RazorpayCreateLink,
  RazorpayFetchLink,
  SessionAdmission,
  TelegramSend,
  TerminalError,
} from '../../contracts/index.ts';
import { REUSE_LINK_MS, referenceIdFor } from './payments.ts';
import { BillingSim, MIN, T0 } from './testkit.ts';

const AMOUNT = 50_000;
const PAY = 'pay_FOGsH8uHkF2FbR';
const LINK = 'plink_FOGqq3O6E5bkml';

const RECONCILE = { reconcileAfterMs: 15 * MIN, reconcileEveryMs: 30 * MIN, linkTtlMs: 60 * MIN };

/** A player who asked for a ₹500 top-up and got its link. */
function withLink(config = {}): BillingSim {
  const sim = new BillingSim({ ...RECONCILE, ...config });
  sim.send(BillingTopup, { requestId: 'r1', chatId: '42', amountPaise: AMOUNT });
  sim.send(BillingPaymentLinkCreated, {
    topupId: 'r1',
    referenceId: referenceIdFor('42', 'r1'),
    linkId: LINK,
    shortUrl: 'https://rzp.example/i/abc',
    amountPaise: AMOUNT,
    currency: 'INR',
  });
  return sim;
}

const paid = (over: Partial<Parameters<typeof BillingPaymentEvent.encode>[0]> = {}) => ({
  event: 'payment_link.paid' as const,
  topupId: 'r1',
  paymentId: PAY,
  linkId: LINK,
  amountPaise: AMOUNT,
  currency: 'INR',
  ...over,
});

const topups = (sim: BillingSim) => sim.ledger.filter((l) => l.reason === 'topup');
const told = (sim: BillingSim) => sim.sent(TelegramSend).map((m) => m.text);

describe('a top-up', () => {
  it('asks the gateway for a payment link tied to the top-up, and sends the link to the player', () => {
    const sim = new BillingSim(RECONCILE);
    sim.send(BillingTopup, { requestId: 'r1', chatId: '42', amountPaise: AMOUNT });
    const [effect] = sim.sent(RazorpayCreateLink);
    expect(effect).toMatchObject({
      subject: 'respawn.out.razorpay',
      playerId: '42',
      topupId: 'r1',
      referenceId: referenceIdFor('42', 'r1'),
      amountPaise: AMOUNT,
      currency: 'INR',
      expireBy: new Date(T0.getTime() + 60 * MIN).toISOString(),
    });
    expect(effect!.referenceId.length).toBeLessThanOrEqual(40);
    expect(sim.timers.get('reconcile-r1')?.at).toEqual(new Date(T0.getTime() + 15 * MIN));

    sim.send(BillingPaymentLinkCreated, {
      topupId: 'r1',
      referenceId: effect!.referenceId,
      linkId: LINK,
      shortUrl: 'https://rzp.example/i/abc',
      amountPaise: AMOUNT,
      currency: 'INR',
    });
    const [link] = sim.sent(TelegramSend);
    expect(link).toMatchObject({ chatId: '42', url: 'https://rzp.example/i/abc' });
    expect(link!.text).toMatch(/Pay ₹500\.00/);
    expect(sim.state.topups.r1!.status).toBe('pending');
  });

  it('gives different top-ups and different players different reference ids', () => {
    const ids = new Set([
      referenceIdFor('42', 'r1'),
      referenceIdFor('42', 'r2'),
      referenceIdFor('43', 'r1'),
    ]);
    expect(ids.size).toBe(3);
  });

  it('refuses an amount outside the bounds without asking Razorpay', () => {
    const sim = new BillingSim({ topupMinPaise: 10_000, topupMaxPaise: 100_000 });
    sim.send(BillingTopup, { requestId: 'r1', chatId: '42', amountPaise: 5_000 });
    sim.send(BillingTopup, { requestId: 'r2', chatId: '42', amountPaise: 100_001 });
    expect(sim.sent(RazorpayCreateLink)).toHaveLength(0);
    expect(told(sim)[0]).toMatch(/from ₹100\.00 to ₹1,000\.00/);
    expect(sim.state.topups).toEqual({});
  });

  it('does not create a second link for a repeated request', () => {
    const sim = withLink();
    sim.send(BillingTopup, { requestId: 'r1', chatId: '42', amountPaise: AMOUNT });
    expect(sim.sent(RazorpayCreateLink)).toHaveLength(1);
  });

  it('tells the player when the link could not be created', () => {
    const sim = new BillingSim();
    sim.send(BillingTopup, { requestId: 'r1', chatId: '42', amountPaise: AMOUNT });
    sim.send(BillingPaymentLinkFailed, {
      topupId: 'r1',
      error: { code: 'BAD_REQUEST_ERROR', message: 'nope', retryable: false },
    });
    expect(sim.state.topups.r1!.status).toBe('failed');
    expect(sim.timers.has('reconcile-r1')).toBe(false);
    expect(told(sim)[0]).toMatch(/could not be created/);
  });

  it('rejects a link result for a top-up it never asked for (dead-lettered by the runtime)', () => {
    const sim = new BillingSim();
    let err: unknown;
    try {
      sim.send(BillingPaymentLinkCreated, {
        topupId: 'nope',
        referenceId: 'x',
        linkId: LINK,
        shortUrl: 'https://rzp.example/i/abc',
        amountPaise: AMOUNT,
        currency: 'INR',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TerminalError);
    expect((err as TerminalError).code).toBe(ErrorCodes.rejected);
  });
});

describe('limits of what goes to Telegram', () => {
  it('handles a request id of the longest allowed length', () => {
    const id = 'x'.repeat(64);
    const sim = new BillingSim();
    sim.send(BillingTopup, { requestId: id, chatId: '42', amountPaise: AMOUNT });
    sim.send(BillingPaymentLinkCreated, {
      topupId: id,
      referenceId: referenceIdFor('42', id),
      linkId: LINK,
      shortUrl: 'https://rzp.example/i/abc',
      amountPaise: AMOUNT,
      currency: 'INR',
    });
    sim.send(BillingPaymentEvent, paid({ topupId: id }));
    expect(sim.state.balancePaise).toBe(AMOUNT);
    for (const m of sim.sent(TelegramSend))
      expect((m.editKey ?? '').length).toBeLessThanOrEqual(64);
  });

  it('keeps /history within Telegram’s message size however long the entries', () => {
    const sim = new BillingSim();
    for (let i = 0; i < 60; i++) {
      sim.send(BillingAdjust, {
        adjustmentId: `a${i}`,
        amountPaise: 1,
        note: 'n'.repeat(200),
        requestedBy: 'operator',
      });
    }
    sim.send(BillingHistory, { chatId: '42', limit: 50 });
    const text = sim.sent(TelegramSend).at(-1)!.text;
    expect(text.length).toBeLessThanOrEqual(4096);
    expect(text.split('\n').length).toBeGreaterThan(10);
  });
});

describe('crediting a payment exactly once', () => {
  it('credits a paid link once, tells the player, and stops reconciling', () => {
    const sim = withLink();
    sim.send(BillingPaymentEvent, paid());
    expect(topups(sim)).toEqual([
      expect.objectContaining({ key: `topup:${PAY}`, amountPaise: AMOUNT, paymentId: PAY }),
    ]);
    expect(sim.state.balancePaise).toBe(AMOUNT);
    expect(told(sim).at(-1)).toMatch(/₹500\.00 added\. Balance: ₹500\.00/);
    expect(sim.timers.has('reconcile-r1')).toBe(false);
  });

  it('announces the credit in a new message (a notification) and marks the link message paid', () => {
    const sim = withLink();
    const [link] = sim.sent(TelegramSend);
    sim.send(BillingPaymentEvent, paid());
    const [markPaid, confirmation] = sim.sent(TelegramSend).slice(1);
    // The link message no longer invites a payment: edited in place, its button gone.
    expect(markPaid).toMatchObject({ chatId: '42', editKey: link!.editKey });
    expect(markPaid!.text).toMatch(/^Paid: ₹500\.00/);
    expect(markPaid!.url).toBeUndefined();
    // The credit itself is a message of its own: no editKey, so Telegram notifies the player.
    expect(confirmation).toMatchObject({
      chatId: '42',
      text: '✅ ₹500.00 added. Balance: ₹500.00.',
    });
    expect(confirmation!.editKey).toBeUndefined();
    expect(sim.sent(TelegramSend)).toHaveLength(3);
  });

  it('credits once when the same webhook arrives five times', () => {
    const sim = withLink();
    for (let i = 0; i < 5; i++) sim.send(BillingPaymentEvent, paid({ eventId: `evt_${i}` }));
    expect(topups(sim)).toHaveLength(1);
    expect(sim.state.balancePaise).toBe(AMOUNT);
    expect(told(sim).filter((t) => t.includes('added'))).toHaveLength(1);
  });

  it('credits once when payment.captured comes before payment_link.paid', () => {
    const sim = withLink();
    sim.send(BillingPaymentEvent, paid({ event: 'payment.captured', linkId: undefined }));
    sim.send(BillingPaymentEvent, paid());
    sim.send(BillingPaymentEvent, paid({ event: 'payment.captured', linkId: undefined }));
    expect(topups(sim)).toHaveLength(1);
    expect(sim.state.balancePaise).toBe(sim.ledgerSum());
  });

  it('holds a payment whose amount does not match the top-up, and says nothing of success', () => {
    const sim = withLink();
    sim.send(BillingPaymentEvent, paid({ amountPaise: AMOUNT - 1 }));
    sim.send(BillingPaymentEvent, paid({ amountPaise: AMOUNT - 1, event: 'payment.captured' }));
    expect(topups(sim)).toHaveLength(0);
    expect(sim.state.balancePaise).toBe(0);
    expect(sim.holds).toEqual([
      expect.objectContaining({
        reason: 'amount_mismatch',
        paymentId: PAY,
        amountPaise: AMOUNT - 1,
        expectedAmountPaise: AMOUNT,
      }),
    ]);
    const [held] = sim.sent(BillingPaymentHeld);
    expect(held).toMatchObject({ subject: 'respawn.billing.42.evt.payment_held', playerId: '42' });
    expect(told(sim).some((t) => t.includes('added'))).toBe(false);
    // The player paid: they hear it arrived and is being checked, once, not to pay again.
    const checking = told(sim).filter((t) => t.includes('needs a check'));
    expect(checking).toEqual([
      `We received your payment of ₹499.99 (${PAY}). It needs a check by our team before it reaches your wallet, so please do not pay again; we will sort it out.`,
    ]);
  });

  it('holds a payment in another currency', () => {
    const sim = withLink();
    sim.send(BillingPaymentEvent, paid({ currency: 'USD' }));
    expect(sim.holds[0]).toMatchObject({ reason: 'amount_mismatch', currency: 'USD' });
    expect(told(sim).at(-1)).toMatch(/^We received your payment of 500\.00 USD \(/);
    expect(sim.state.balancePaise).toBe(0);
  });

  it('holds a payment for a top-up nobody asked for', () => {
    const sim = new BillingSim();
    sim.send(BillingPaymentEvent, paid({ topupId: 'ghost' }));
    expect(sim.holds[0]).toMatchObject({ reason: 'unknown_topup', topupId: 'ghost' });
    expect(sim.ledger).toHaveLength(0);
  });

  it('credits a payment that came before its top-up request once the request arrives', () => {
    const sim = new BillingSim(RECONCILE);
    sim.send(BillingPaymentEvent, paid());
    expect(sim.holds[0]).toMatchObject({ reason: 'unknown_topup', paymentId: PAY });
    expect(sim.state.balancePaise).toBe(0);
    sim.send(BillingTopup, { requestId: 'r1', chatId: '42', amountPaise: AMOUNT });
    expect(topups(sim)).toEqual([
      expect.objectContaining({ key: `topup:${PAY}`, amountPaise: AMOUNT, paymentId: PAY }),
    ]);
    expect(sim.state.balancePaise).toBe(AMOUNT);
    expect(sim.resolved).toEqual([expect.objectContaining({ key: `hold:${PAY}:unknown_topup` })]);
    // Paid already: no payment link is made, and the player hears of the credit.
    expect(sim.sent(RazorpayCreateLink)).toHaveLength(0);
    expect(told(sim).some((t) => t.includes('added'))).toBe(true);
    // No link message was ever shown: nothing to mark paid, and nothing is sent as an edit.
    expect(sim.sent(TelegramSend).filter((m) => m.editKey !== undefined)).toEqual([]);
    expect(sim.state.early).toEqual({});
    // The payment's redelivery changes nothing.
    sim.send(BillingPaymentEvent, paid({ event: 'payment.captured' }));
    expect(topups(sim)).toHaveLength(1);
  });

  it('keeps an early payment held when its top-up asks for another amount', () => {
    const sim = new BillingSim(RECONCILE);
    sim.send(BillingPaymentEvent, paid({ amountPaise: AMOUNT - 100 }));
    sim.send(BillingTopup, { requestId: 'r1', chatId: '42', amountPaise: AMOUNT });
    expect(topups(sim)).toHaveLength(0);
    expect(sim.resolved).toHaveLength(0);
    expect(sim.sent(RazorpayCreateLink)).toHaveLength(1);
  });

  it('holds a second payment on a top-up that was already paid', () => {
    const sim = withLink();
    sim.send(BillingPaymentEvent, paid());
    sim.send(BillingPaymentEvent, paid({ paymentId: 'pay_Second' }));
    expect(topups(sim)).toHaveLength(1);
    expect(sim.holds[0]).toMatchObject({ reason: 'second_payment', paymentId: 'pay_Second' });
    expect(told(sim).at(-1)).toMatch(/^We received your payment of ₹500\.00 \(pay_Second\)/);
  });

  it('tells the player about a failed payment once and keeps the top-up open', () => {
    const sim = withLink();
    const failed = paid({
      event: 'payment.failed',
      paymentId: 'pay_Failed',
      errorReason: 'declined',
    });
    sim.send(BillingPaymentEvent, failed);
    sim.send(BillingPaymentEvent, failed);
    const sends = sim.sent(TelegramSend);
    const failure = sends.filter((m) => m.text.includes('did not go through'));
    expect(failure).toHaveLength(1);
    // It takes the place of the link message, link kept; the credit then takes its place.
    const link = sends.find((m) => m.url !== undefined && !m.text.includes('did not'))!;
    expect(failure[0]).toMatchObject({ editKey: link.editKey, url: link.url });
    expect(sim.state.topups.r1!.status).toBe('pending');
    sim.send(BillingPaymentEvent, paid());
    expect(sim.state.balancePaise).toBe(AMOUNT);
    const [markPaid, confirmation] = sim.sent(TelegramSend).slice(-2);
    expect(markPaid).toMatchObject({ editKey: link.editKey });
    expect(markPaid!.text).toMatch(/^Paid/);
    expect(markPaid!.url).toBeUndefined();
    expect(confirmation!.editKey).toBeUndefined();
    expect(confirmation!.text).toMatch(/added/);
  });
});

describe('a repeated top-up request (a double or triple press)', () => {
  const press = (sim: BillingSim, requestId: string, amountPaise = AMOUNT, chatId = '42') =>
    sim.send(BillingTopup, { requestId, chatId, amountPaise });
  const linkFor = (sim: BillingSim, topupId: string, linkId: string, amountPaise = AMOUNT) =>
    sim.send(BillingPaymentLinkCreated, {
      topupId,
      referenceId: referenceIdFor('42', topupId),
      linkId,
      shortUrl: `https://rzp.example/i/${linkId}`,
      amountPaise,
      currency: 'INR',
    });
  const links = (sim: BillingSim) => sim.sent(TelegramSend).filter((m) => m.url !== undefined);

  it('makes one payment link for three quick presses of the same amount, credited once', () => {
    const sim = new BillingSim(RECONCILE);
    press(sim, 'r1');
    press(sim, 'r2');
    press(sim, 'r3');
    expect(sim.sent(RazorpayCreateLink)).toHaveLength(1);
    expect(Object.keys(sim.state.topups)).toEqual(['r1']);
    expect(sim.sent(TelegramSend)).toEqual([]);

    linkFor(sim, 'r1', LINK);
    expect(links(sim)).toHaveLength(1);
    sim.send(BillingPaymentEvent, paid());
    sim.send(BillingPaymentEvent, paid({ event: 'payment.captured', linkId: undefined }));
    expect(topups(sim)).toEqual([expect.objectContaining({ key: `topup:${PAY}` })]);
    expect(sim.state.balancePaise).toBe(AMOUNT);
    expect(told(sim).filter((t) => t.includes('added'))).toHaveLength(1);
  });

  it('answers a press while the link is open with that same link, not a new one', () => {
    const sim = withLink();
    sim.advance(REUSE_LINK_MS - MIN);
    press(sim, 'r2');
    expect(sim.sent(RazorpayCreateLink)).toHaveLength(1);
    const [first, again] = links(sim);
    // The same message (its editKey), the same link: nothing left behind still saying "Pay".
    expect(again).toMatchObject({ url: first!.url, editKey: first!.editKey, text: first!.text });
    expect(sim.state.topups.r2).toBeUndefined();
    sim.send(BillingPaymentEvent, paid());
    expect(topups(sim)).toHaveLength(1);
    expect(sim.sent(TelegramSend).at(-2)).toMatchObject({ editKey: first!.editKey });
    expect(sim.sent(TelegramSend).at(-2)!.url).toBeUndefined();
  });

  it('makes a new link once the open one is older than the reuse window; each is credited once', () => {
    const sim = withLink();
    sim.advance(REUSE_LINK_MS);
    press(sim, 'r2');
    expect(sim.sent(RazorpayCreateLink).map((c) => c.topupId)).toEqual(['r1', 'r2']);
    linkFor(sim, 'r2', 'plink_Second');
    sim.send(BillingPaymentEvent, paid());
    sim.send(
      BillingPaymentEvent,
      paid({ topupId: 'r2', linkId: 'plink_Second', paymentId: 'pay_2' }),
    );
    sim.send(
      BillingPaymentEvent,
      paid({ topupId: 'r2', linkId: 'plink_Second', paymentId: 'pay_2' }),
    );
    expect(topups(sim).map((l) => l.key)).toEqual([`topup:${PAY}`, 'topup:pay_2']);
    expect(sim.state.balancePaise).toBe(2 * AMOUNT);
  });

  it('makes a new link for another amount, another chat, after a payment or after a failure', () => {
    const sim = withLink();
    press(sim, 'r2', 25_000);
    press(sim, 'r3', AMOUNT, '43');
    expect(sim.sent(RazorpayCreateLink).map((c) => c.topupId)).toEqual(['r1', 'r2', 'r3']);
    sim.send(BillingPaymentEvent, paid());
    press(sim, 'r4');
    expect(sim.sent(RazorpayCreateLink).at(-1)!.topupId).toBe('r4');
    sim.send(BillingPaymentLinkFailed, {
      topupId: 'r4',
      error: { code: 'BAD_REQUEST_ERROR', message: 'nope', retryable: false },
    });
    press(sim, 'r5');
    expect(sim.sent(RazorpayCreateLink).at(-1)!.topupId).toBe('r5');
  });

  it('credits a payment recorded for the repeated request itself, not folding it into the open link', () => {
    const sim = withLink();
    sim.send(BillingPaymentEvent, paid({ topupId: 'r2', paymentId: 'pay_Early' }));
    press(sim, 'r2');
    expect(topups(sim)).toEqual([expect.objectContaining({ key: 'topup:pay_Early' })]);
    expect(sim.resolved).toEqual([
      expect.objectContaining({ key: 'hold:pay_Early:unknown_topup' }),
    ]);
    expect(sim.sent(RazorpayCreateLink)).toHaveLength(1);
    expect(sim.state.topups.r1!.status).toBe('pending');
  });
});

describe('refunds', () => {
  it('debits a processed refund once', () => {
    const sim = withLink();
    sim.send(BillingPaymentEvent, paid());
    const refund = paid({ event: 'refund.processed', refundId: 'rfnd_1', amountPaise: 20_000 });
    sim.send(BillingPaymentEvent, refund);
    sim.send(BillingPaymentEvent, refund);
    expect(sim.state.balancePaise).toBe(30_000);
    expect(sim.ledger.filter((l) => l.reason === 'refund')).toEqual([
      expect.objectContaining({ key: 'refund:rfnd_1', amountPaise: -20_000 }),
    ]);
  });

  it('holds a refund of a payment that was never credited', () => {
    const sim = withLink();
    sim.send(BillingPaymentEvent, paid({ event: 'refund.processed', refundId: 'rfnd_1' }));
    expect(sim.holds[0]).toMatchObject({ reason: 'refund_unknown_payment', refundId: 'rfnd_1' });
    expect(sim.ledger).toHaveLength(0);
  });

  it('applies a refund that came before its payment’s credit once the payment is credited', () => {
    const sim = withLink();
    // Razorpay's retries arrive in any order: the refund first, the payment after.
    const refund = paid({ event: 'refund.processed', refundId: 'rfnd_1', amountPaise: 20_000 });
    sim.send(BillingPaymentEvent, refund);
    expect(sim.state.balancePaise).toBe(0);
    sim.send(BillingPaymentEvent, paid());
    expect(sim.state.balancePaise).toBe(30_000);
    expect(sim.state.balancePaise).toBe(sim.ledgerSum());
    expect(sim.ledger.filter((l) => l.reason === 'refund')).toEqual([
      expect.objectContaining({ key: 'refund:rfnd_1', amountPaise: -20_000 }),
    ]);
    expect(sim.resolved).toEqual([
      expect.objectContaining({ key: 'hold:rfnd_1:refund_unknown_payment' }),
    ]);
    expect(told(sim).slice(-2)).toEqual([
      '✅ ₹500.00 added. Balance: ₹500.00.',
      '₹200.00 was refunded to your payment method. Balance: ₹300.00.',
    ]);
    // Later copies of either change nothing.
    sim.send(BillingPaymentEvent, refund);
    sim.send(BillingPaymentEvent, paid({ event: 'payment.captured' }));
    expect(sim.state.balancePaise).toBe(30_000);
    expect(sim.state.earlyRefunds).toEqual([]);
  });
});

describe('reconciliation', () => {
  it('fetches a link still unpaid after the configured time and credits a captured payment once', () => {
    const sim = withLink();
    sim.advance(15 * MIN);
    expect(sim.sent(RazorpayFetchLink)).toEqual([
      expect.objectContaining({ playerId: '42', topupId: 'r1', linkId: LINK }),
    ]);
    expect(sim.timers.get('reconcile-r1')?.at).toEqual(new Date(T0.getTime() + 45 * MIN));
    const status = {
      topupId: 'r1',
      linkId: LINK,
      status: 'paid' as const,
      amountPaidPaise: AMOUNT,
      currency: 'INR',
      payments: [{ paymentId: PAY, amountPaise: AMOUNT, status: 'captured' }],
    };
    sim.send(BillingLinkStatus, status);
    sim.send(BillingLinkStatus, status);
    // The webhook Razorpay kept retrying finally arrives.
    sim.send(BillingPaymentEvent, paid());
    expect(topups(sim)).toHaveLength(1);
    expect(sim.state.balancePaise).toBe(AMOUNT);
    expect(sim.timers.has('reconcile-r1')).toBe(false);
    sim.advance(120 * MIN);
    expect(sim.sent(RazorpayFetchLink)).toHaveLength(1);
  });

  it('keeps looking until past the link’s expiry, then gives the top-up up', () => {
    const sim = withLink();
    sim.advance(200 * MIN);
    // At 15, 45, 75 and 105 minutes; the last one is past expiry (60) + one interval (30).
    expect(sim.sent(RazorpayFetchLink)).toHaveLength(4);
    expect(sim.state.topups.r1!.status).toBe('expired');
    expect(sim.timers.size).toBe(0);
  });

  it('still credits a payment captured at the last moment of an expired top-up', () => {
    const sim = withLink();
    sim.send(BillingLinkStatus, {
      topupId: 'r1',
      linkId: LINK,
      status: 'expired',
      amountPaidPaise: 0,
      currency: 'INR',
      payments: [],
    });
    expect(sim.state.topups.r1!.status).toBe('expired');
    sim.send(BillingPaymentEvent, paid());
    expect(sim.state.balancePaise).toBe(AMOUNT);
  });
});

describe('balance and history', () => {
  it('answers /balance with the balance, what it buys, and the top-up presets', () => {
    const sim = withLink();
    sim.send(BillingPaymentEvent, paid());
    sim.send(BillingBalance, { chatId: '42' });
    const answer = sim.sent(TelegramSend).at(-1)!;
    expect(answer.text).toMatch(/Balance: ₹500\.00/);
    expect(answer.text).toMatch(/≈ 16 h 40 min on Spot/);
    expect(answer.collapseKey).toBe('balance');
    expect(answer.buttons?.flat().map((b) => b.data)).toEqual([
      'topup:10000',
      'topup:25000',
      'topup:50000',
      'topup:100000',
    ]);
  });

  it('says an empty wallet buys no play, not "≈ 0 minutes"', () => {
    const sim = new BillingSim(RECONCILE);
    sim.send(BillingBalance, { chatId: '42' });
    const answer = sim.sent(TelegramSend).at(-1)!;
    expect(answer.text).toBe('Balance: ₹0.00.\nStarting needs at least ₹7.50. Top up to play.');
    expect(answer.buttons?.flat().map((b) => b.data)).toContain('topup:10000');
  });

  it('tells a player whose balance is below what starting needs exactly that, as admission decides', () => {
    for (const paise of [0, 1, 500, 749, 750, 751, 50_000]) {
      const sim = new BillingSim({ minMinutes: 15 });
      if (paise > 0) {
        sim.send(BillingAdjust, {
          adjustmentId: 'a',
          amountPaise: paise,
          note: 'n',
          requestedBy: 'operator',
        });
      }
      sim.send(BillingBalance, { chatId: '42' });
      const answer = sim.sent(TelegramSend).at(-1)!.text;
      sim.send(BillingAdmit, { sessionId: 's1', chatId: '42', cheapestPricePerHourPaise: 3000 });
      const admission = sim.sent(SessionAdmission).at(-1)!;
      expect({
        paise,
        refused: answer.includes('Starting needs at least ₹7.50. Top up to play.'),
      }).toEqual({
        paise,
        refused: !admission.allowed,
      });
      expect({ paise, promises: answer.includes('on Spot') }).toEqual({
        paise,
        promises: admission.allowed,
      });
    }
  });

  it('says "Starting needs at least ₹7.50" for ₹5.00, not "≈ 10 minutes on Spot"', () => {
    const sim = new BillingSim();
    sim.send(BillingAdjust, {
      adjustmentId: 'a',
      amountPaise: 500,
      note: 'n',
      requestedBy: 'operator',
    });
    sim.send(BillingBalance, { chatId: '42' });
    const answer = sim.sent(TelegramSend).at(-1)!;
    expect(answer.text).toBe('Balance: ₹5.00.\nStarting needs at least ₹7.50. Top up to play.');
    expect(answer.buttons?.flat().map((b) => b.data)).toContain('topup:10000');
  });

  it('states the minimum at the price admission was last asked with', () => {
    const sim = new BillingSim();
    sim.send(BillingAdjust, {
      adjustmentId: 'a',
      amountPaise: 1000,
      note: 'n',
      requestedBy: 'operator',
    });
    sim.send(BillingBalance, { chatId: '42' });
    expect(sim.sent(TelegramSend).at(-1)!.text).toMatch(/≈ 20 minutes on Spot/);
    // The cheapest rig now costs ₹60.00/h: 15 minutes need ₹15.00.
    sim.send(BillingAdmit, { sessionId: 's1', chatId: '42', cheapestPricePerHourPaise: 6000 });
    expect(sim.sent(SessionAdmission).at(-1)).toMatchObject({
      allowed: false,
      requiredPaise: 1500,
    });
    sim.send(BillingBalance, { chatId: '42' });
    expect(sim.sent(TelegramSend).at(-1)!.text).toBe(
      'Balance: ₹10.00.\nStarting needs at least ₹15.00. Top up to play.',
    );
  });

  it('while a session runs, says how long it lasts and what the next start needs', () => {
    const sim = new BillingSim();
    sim.send(BillingAdjust, {
      adjustmentId: 'a',
      amountPaise: 500,
      note: 'n',
      requestedBy: 'operator',
    });
    sim.send(BillingMeterOpen, {
      sessionId: 's1',
      chatId: '42',
      tier: 'spot',
      pricePerHourPaise: 3000,
      at: sim.now.toISOString(),
    });
    sim.send(BillingBalance, { chatId: '42' });
    expect(sim.sent(TelegramSend).at(-1)!.text).toBe(
      'Balance: ₹5.00 (including the session running now).\n' +
        "≈ 10 minutes of play left at your session's Spot price (₹30.00/h).\n" +
        'Starting another session needs at least ₹7.50. Top up to keep playing.',
    );
  });

  it('while an On-Demand session runs, says how long it lasts at the On-Demand price, not Spot', () => {
    const sim = new BillingSim();
    sim.send(BillingAdjust, {
      adjustmentId: 'a',
      amountPaise: 9_000,
      note: 'n',
      requestedBy: 'operator',
    });
    sim.send(BillingMeterOpen, {
      sessionId: 's1',
      chatId: '42',
      tier: 'on_demand',
      pricePerHourPaise: 9_000,
      at: sim.now.toISOString(),
    });
    sim.send(BillingBalance, { chatId: '42' });
    expect(sim.sent(TelegramSend).at(-1)!.text).toBe(
      'Balance: ₹90.00 (including the session running now).\n' +
        "≈ 1 h of play left at your session's On-Demand price (₹90.00/h).",
    );
  });

  it('answers /history with the last entries, newest first, a session’s usage on one line', () => {
    const sim = withLink({ settleIntervalMs: MIN });
    sim.send(BillingPaymentEvent, paid());
    sim.send(BillingMeterOpen, {
      sessionId: 's1',
      tier: 'spot',
      pricePerHourPaise: 3000,
      at: sim.now.toISOString(),
    });
    sim.advance(10 * MIN);
    sim.send(BillingMeterClose, { sessionId: 's1', at: sim.now.toISOString(), reason: 'player' });
    sim.send(BillingHistory, { chatId: '42', limit: 10 });
    const lines = sim.sent(TelegramSend).at(-1)!.text.split('\n');
    expect(lines[0]).toBe('Last 2 wallet entries (newest first):');
    sim.send(BillingHistory, { chatId: '42', limit: 1 });
    expect(sim.sent(TelegramSend).at(-1)!.text.split('\n')[0]).toBe('Last wallet entry:');
    expect(lines[1]).toMatch(/-₹5\.00 {2}Spot session s1 {2}→ ₹495\.00$/);
    expect(lines[2]).toMatch(/\+₹500\.00 {2}Top-up {2}→ ₹500\.00$/);
    // On the players' clock (Asia/Kolkata by default), not the server's.
    expect(lines[2]).toMatch(/^4 Mar 2030, 15:30 IST {2}/);
    expect(lines[1]).toMatch(/^4 Mar 2030, 15:40 IST {2}/);
  });

  it('says how long the link is valid in the units that fit', () => {
    expect(told(withLink({ linkTtlMs: 20 * MIN }))[0]).toMatch(
      /The link is valid for 20 minutes\.$/,
    );
    expect(told(withLink({ linkTtlMs: 90 * MIN }))[0]).toMatch(/valid for 1 h 30 min\.$/);
    expect(told(withLink())[0]).toMatch(/valid for 1 h\.$/);
  });

  it('names both tiers on the history line of a session that resumed on another', () => {
    const sim = withLink({ settleIntervalMs: MIN });
    sim.send(BillingPaymentEvent, paid());
    const at = () => sim.now.toISOString();
    sim.send(BillingMeterOpen, {
      sessionId: 's1',
      tier: 'spot',
      pricePerHourPaise: 3000,
      at: at(),
    });
    sim.advance(10 * MIN);
    sim.send(BillingMeterPause, { sessionId: 's1', at: at() });
    sim.send(BillingMeterResume, {
      sessionId: 's1',
      tier: 'on_demand',
      pricePerHourPaise: 9000,
      at: at(),
    });
    sim.advance(30 * MIN);
    sim.send(BillingMeterClose, { sessionId: 's1', at: at(), reason: 'player' });
    sim.send(BillingHistory, { chatId: '42', limit: 10 });
    const lines = sim.sent(TelegramSend).at(-1)!.text.split('\n');
    expect(lines[1]).toMatch(/-₹50\.00 {2}Spot \+ On-Demand session s1 {2}→ ₹450\.00$/);
  });

  it('states, after a credit, the balance /balance states: unsettled play counted', () => {
    const sim = withLink({ settleIntervalMs: 60 * MIN });
    sim.send(BillingAdjust, {
      adjustmentId: 'a1',
      amountPaise: 10_000,
      note: 'seed',
      requestedBy: 'operator',
    });
    sim.send(BillingMeterOpen, {
      sessionId: 's1',
      tier: 'spot',
      pricePerHourPaise: 3000,
      at: sim.now.toISOString(),
    });
    sim.advance(30 * MIN); // ₹15 played, not settled yet
    sim.send(BillingPaymentEvent, paid());
    expect(told(sim).at(-1)).toBe('✅ ₹500.00 added. Balance: ₹585.00.');
  });

  it('writes history times in the configured time zone', () => {
    const sim = withLink({ timeZone: 'Europe/London' });
    sim.send(BillingPaymentEvent, paid());
    sim.send(BillingHistory, { chatId: '42', limit: 10 });
    const lines = sim.sent(TelegramSend).at(-1)!.text.split('\n');
    expect(lines[1]).toMatch(/^4 Mar 2030, 10:00 GMT {2}\+₹500\.00/);
  });
});
