/**
 * What the generator's acts look like on the wire: Telegram updates as the Bot API sends them
 * to a webhook, Razorpay webhook bodies with the entities its API returns, and the malformed
 * variants injected as bad input (generate.ts decides who does what and when).
 */
import { referenceIdFor } from '../../actors/billing/index.ts';
import type { Rng } from './generate-rng.ts';
import type { Act, BadKind } from './generate-model.ts';

const BOT = { id: 1000001, is_bot: true, first_name: 'Respawn', username: 'respawn_bot' };

export interface Player {
  id: number;
  name: string;
  messageId: number;
}

const unix = (ms: number): number => Math.floor(ms / 1000);
export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

function user(p: Player) {
  return { id: p.id, is_bot: false, first_name: p.name, language_code: 'en' };
}

function privateChat(p: Player) {
  return { id: p.id, first_name: p.name, type: 'private' };
}

export function textUpdate(
  updateId: number,
  p: Player,
  at: number,
  text: string,
  group: boolean,
): string {
  const command = /^\/[A-Za-z0-9_]+/.exec(text)?.[0];
  return JSON.stringify({
    update_id: updateId,
    message: {
      message_id: ++p.messageId,
      from: user(p),
      chat: group
        ? { id: -1_001_000_000_000 - p.id, title: 'Respawn gamers', type: 'group' }
        : privateChat(p),
      date: unix(at),
      text,
      ...(command === undefined
        ? {}
        : { entities: [{ offset: 0, length: command.length, type: 'bot_command' }] }),
    },
  });
}

export function buttonUpdate(
  updateId: number,
  p: Player,
  at: number,
  data: string,
  rng: Rng,
): string {
  return JSON.stringify({
    update_id: updateId,
    callback_query: {
      id: `${p.id}${rng.int(100_000, 999_999)}`,
      from: user(p),
      message: {
        message_id: Math.max(1, p.messageId - rng.int(0, 2)),
        from: BOT,
        chat: privateChat(p),
        date: unix(at) - rng.int(5, 600),
        text: 'Respawn',
      },
      chat_instance: String(-(p.id * 7 + 13)),
      data,
    },
  });
}

export function badTelegram(updateId: number, p: Player, at: number): string {
  // A message without chat and message_id: the gateway reads only update_id and from.
  return JSON.stringify({
    update_id: updateId,
    message: { from: user(p), date: unix(at), text: '/play' },
  });
}

function paymentEntity(
  pay: { paymentId: string; orderId: string; amountPaise: number | string },
  status: 'captured' | 'failed',
  notes: Record<string, string> | [],
  at: number,
) {
  const failed = status === 'failed';
  return {
    id: pay.paymentId,
    entity: 'payment',
    amount: pay.amountPaise,
    currency: 'INR',
    status,
    order_id: pay.orderId,
    invoice_id: null,
    international: false,
    method: 'upi',
    amount_refunded: 0,
    refund_status: null,
    captured: !failed,
    description: 'Respawn wallet top-up',
    vpa: 'player@upi',
    email: 'void@razorpay.com',
    contact: '+919000090000',
    notes,
    fee: failed ? 0 : Math.round(Number(pay.amountPaise) * 0.02),
    tax: failed ? 0 : Math.round(Number(pay.amountPaise) * 0.0036),
    error_code: failed ? 'BAD_REQUEST_ERROR' : null,
    error_description: failed ? 'Payment was declined by the bank' : null,
    created_at: unix(at),
  };
}

function orderEntity(
  orderId: string,
  amount: number,
  paid: boolean,
  notes: Record<string, string> | [],
  at: number,
) {
  return {
    id: orderId,
    entity: 'order',
    amount,
    amount_paid: paid ? amount : 0,
    amount_due: paid ? 0 : amount,
    currency: 'INR',
    receipt: null,
    status: paid ? 'paid' : 'attempted',
    attempts: 1,
    notes,
    created_at: unix(at) - 60,
  };
}

function envelope(event: string, payload: Record<string, unknown>, at: number): string {
  return JSON.stringify({
    entity: 'event',
    account_id: 'acc_RespawnSynth01',
    event,
    contains: Object.keys(payload),
    payload,
    created_at: unix(at),
  });
}

export function webhook(act: Extract<Act, { kind: 'webhook' }>, p: Player, at: number): string {
  const updateId = act.topup.updateId;
  if (updateId === undefined) throw new Error('a webhook planned before its top-up button');
  const topupId = `tg-${updateId}`;
  const playerId = String(p.id);
  const notes = { player_id: playerId, topup_id: topupId };
  const { payment } = act;
  if (act.event === 'payment.failed') {
    return envelope(
      act.event,
      { payment: { entity: paymentEntity(payment, 'failed', notes, at) } },
      at,
    );
  }
  const pay = { entity: paymentEntity(payment, 'captured', notes, at) };
  const order = { entity: orderEntity(payment.orderId, payment.amountPaise, true, notes, at) };
  if (act.event === 'payment.captured') return envelope(act.event, { payment: pay, order }, at);
  const link = {
    id: payment.linkId,
    entity: 'payment_link',
    amount: payment.amountPaise,
    amount_paid: payment.amountPaise,
    currency: 'INR',
    status: 'paid',
    reference_id: referenceIdFor(playerId, topupId),
    description: 'Respawn wallet top-up',
    notes,
    order_id: payment.orderId,
    created_at: unix(at) - 120,
  };
  return envelope(act.event, { payment_link: { entity: link }, order, payment: pay }, at);
}

export function badRazorpay(kind: BadKind, p: Player, at: number, rng: Rng): string {
  const pay = {
    paymentId: `pay_${rng.alnum(14)}`,
    orderId: `order_${rng.alnum(14)}`,
    amountPaise: 25_000,
  };
  switch (kind) {
    case 'razorpay_unknown_event':
      return envelope(
        'order.paid',
        { order: { entity: orderEntity(pay.orderId, 25_000, true, [], at) } },
        at,
      );
    case 'razorpay_no_notes':
      return envelope(
        'payment.captured',
        { payment: { entity: paymentEntity(pay, 'captured', [], at) } },
        at,
      );
    default:
      return envelope(
        'payment.captured',
        {
          payment: {
            entity: paymentEntity(
              { ...pay, amountPaise: '25000' },
              'captured',
              { player_id: String(p.id), topup_id: 'tg-0' },
              at,
            ),
          },
        },
        at,
      );
  }
}
