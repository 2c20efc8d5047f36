import { describe, expect, it } from 'vitest';
import { BillingPaymentEvent, ErrorCodes } from '../../contracts/index.ts';
import { IngressDlqCodes, routeRazorpayWebhook } from './razorpay-route.ts';

const enc = new TextEncoder();
const body = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

const NOTES = { player_id: '42', topup_id: 'r1' };

const payment = (over: Record<string, unknown> = {}) => ({
  entity: {
    id: 'pay_FOGsH8uHkF2FbR',
    entity: 'payment',
    amount: 50_000,
    currency: 'INR',
    status: 'captured',
    order_id: 'order_FOGs9Hz3ZaAjsm',
    method: 'upi',
    notes: [],
    error_description: null,
    ...over,
  },
});

const envelope = (event: string, payload: unknown) => ({
  entity: 'event',
  account_id: 'acc_DKoeHMNpi0nC7k',
  event,
  contains: Object.keys(payload as object),
  payload,
  created_at: 1_596_890_208,
});

const linkPaid = (linkNotes: unknown = NOTES, paymentOver: Record<string, unknown> = {}) =>
  envelope('payment_link.paid', {
    payment_link: {
      entity: {
        id: 'plink_FOGqq3O6E5bkml',
        amount: 50_000,
        amount_paid: 50_000,
        currency: 'INR',
        status: 'paid',
        reference_id: 'rsp_abc',
        notes: linkNotes,
      },
    },
    order: { entity: { id: 'order_FOGs9Hz3ZaAjsm', notes: linkNotes } },
    payment: payment(paymentOver),
  });

function published(r: ReturnType<typeof routeRazorpayWebhook>) {
  if (r.kind !== 'publish') throw new Error(`expected a publish, got ${r.code}: ${r.reason}`);
  return r;
}

describe('routing a Razorpay webhook to billing', () => {
  it('turns payment_link.paid into a payment event on the player’s billing subject', () => {
    const r = published(routeRazorpayWebhook(body(linkPaid()), 'rzp-EvT1'));
    expect(r.subject).toBe('respawn.billing.42.cmd.payment_event');
    expect(r.msgId).toBe('rzp-pay_FOGsH8uHkF2FbR-payment_link.paid');
    expect(BillingPaymentEvent.decode(r.data)).toEqual({
      type: 'billing.payment_event.v1',
      event: 'payment_link.paid',
      topupId: 'r1',
      paymentId: 'pay_FOGsH8uHkF2FbR',
      linkId: 'plink_FOGqq3O6E5bkml',
      amountPaise: 50_000,
      currency: 'INR',
      eventId: 'EvT1',
    });
  });

  it('gives two deliveries of the same fact the same message id, whatever their event ids', () => {
    const a = published(routeRazorpayWebhook(body(linkPaid()), 'rzp-one'));
    const b = published(routeRazorpayWebhook(body(linkPaid()), 'rzp-two'));
    expect(a.msgId).toBe(b.msgId);
  });

  it('routes a payment whose other notes hold values of any kind (only the ids are read)', () => {
    const notes = { ...NOTES, cart: ['a', 'b'], gift: true, meta: { from: 'app' }, note: null };
    const r = published(routeRazorpayWebhook(body(linkPaid(notes, { notes })), 'rzp-EvT2'));
    expect(r.subject).toBe('respawn.billing.42.cmd.payment_event');
    expect(BillingPaymentEvent.decode(r.data)).toMatchObject({
      topupId: 'r1',
      amountPaise: 50_000,
    });
  });

  it('routes payment.captured by the notes on the payment', () => {
    const w = envelope('payment.captured', { payment: payment({ notes: NOTES }) });
    const r = published(routeRazorpayWebhook(body(w)));
    expect(r.message).toMatchObject({ event: 'payment.captured', topupId: 'r1' });
    expect(r.msgId).toBe('rzp-pay_FOGsH8uHkF2FbR-payment.captured');
  });

  it('routes payment.failed with Razorpay’s reason', () => {
    const w = envelope('payment.failed', {
      payment: payment({ status: 'failed', notes: NOTES, error_description: 'Card declined' }),
    });
    expect(published(routeRazorpayWebhook(body(w))).message).toMatchObject({
      event: 'payment.failed',
      errorReason: 'Card declined',
    });
  });

  it('routes refund.processed by the refunded payment’s notes, keyed by the refund id', () => {
    const w = envelope('refund.processed', {
      refund: {
        entity: {
          id: 'rfnd_FP8QHiV938haTz',
          payment_id: 'pay_FOGsH8uHkF2FbR',
          amount: 20_000,
          currency: 'INR',
          status: 'processed',
          notes: [],
        },
      },
      payment: payment({ notes: NOTES }),
    });
    const r = published(routeRazorpayWebhook(body(w)));
    expect(r.msgId).toBe('rzp-rfnd_FP8QHiV938haTz-refund.processed');
    expect(r.message).toMatchObject({ refundId: 'rfnd_FP8QHiV938haTz', amountPaise: 20_000 });
  });

  it('passes a wrong currency through for billing to hold (never decides money itself)', () => {
    const r = published(routeRazorpayWebhook(body(linkPaid(NOTES, { currency: 'USD' }))));
    expect(r.message.currency).toBe('USD');
  });
});

describe('bad webhooks go to the dead-letter stream with a reason', () => {
  const dead = (data: Uint8Array) => {
    const r = routeRazorpayWebhook(data);
    if (r.kind !== 'dead') throw new Error('expected a dead letter');
    return r;
  };

  it.each([
    ['not JSON', enc.encode('{nope'), ErrorCodes.invalidJson],
    ['an unknown event type', body(envelope('order.paid', {})), ErrorCodes.unknownType],
    ['no event at all', body({ entity: 'event' }), ErrorCodes.unknownType],
    [
      'a payment without an amount',
      body(envelope('payment.captured', { payment: payment({ amount: undefined, notes: NOTES }) })),
      ErrorCodes.invalidPayload,
    ],
    [
      'an amount in rupees with decimals',
      body(envelope('payment.captured', { payment: payment({ amount: 500.5, notes: NOTES }) })),
      ErrorCodes.invalidPayload,
    ],
    ['a payment for no known top-up (no notes)', body(linkPaid([])), IngressDlqCodes.unroutable],
    [
      'a player id that is not a subject token',
      body(linkPaid({ player_id: '4.2', topup_id: 'r1' })),
      ErrorCodes.badSubject,
    ],
    [
      'payment_link.paid with a payment that is not captured',
      body(linkPaid(NOTES, { status: 'authorized' })),
      ErrorCodes.rejected,
    ],
  ])('%s', (_what, data, code) => {
    const r = dead(data);
    expect(r.code).toBe(code);
    expect(r.reason.length).toBeGreaterThan(0);
  });
});
