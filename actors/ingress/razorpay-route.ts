/**
 * From a verified Razorpay webhook (raw body, as stored on RESPAWN_IN) to the billing command
 * of the player it concerns. Pure: no I/O, so every kind of bad input is unit-tested.
 *
 * The player and the top-up come from the `notes` billing put on the payment link
 * (`player_id`, `topup_id`), found on the link, the order or the payment entity. The command's
 * Nats-Msg-Id derives from the payment (or refund) id and the event kind, so the same fact
 * reported by two webhook deliveries is stored once while JetStream remembers it; after
 * that the billing actor's own state decides.
 */
import {
  ActorKinds,
  BillingPaymentEvent,
  BillingVerbs,
  ErrorCodes,
  RAZORPAY_INGRESS_MSG_PREFIX,
  RazorpayWebhookEvents,
  TerminalError,
  cmdSubject,
  decodeRazorpayWebhook,
  isValidToken,
  type MessageOf,
  type RazorpayNotes,
  type RazorpayWebhook,
} from '../../contracts/index.ts';

/** Why a webhook went to the dead-letter stream instead of to billing. */
export const IngressDlqCodes = {
  ...ErrorCodes,
  /** Valid, but carries no Respawn player/top-up reference: nobody to credit. */
  unroutable: 'unroutable',
} as const;

export type Routed =
  | {
      kind: 'publish';
      subject: string;
      msgId: string;
      playerId: string;
      event: string;
      message: Omit<MessageOf<typeof BillingPaymentEvent>, 'type'>;
      data: Uint8Array;
    }
  | { kind: 'dead'; code: string; reason: string };

interface Ref {
  playerId: string;
  topupId: string;
}

const TOPUP_ID = /^[A-Za-z0-9_-]{1,64}$/;

function refIn(notes: RazorpayNotes | undefined): Ref | 'invalid' | undefined {
  if (notes === undefined || Array.isArray(notes)) return undefined;
  const player = notes.player_id;
  const topup = notes.topup_id;
  if (player === undefined && topup === undefined) return undefined;
  if (typeof player !== 'string' || !isValidToken(player)) return 'invalid';
  if (typeof topup !== 'string' || !TOPUP_ID.test(topup)) return 'invalid';
  return { playerId: player, topupId: topup };
}

function findRef(...candidates: (RazorpayNotes | undefined)[]): Ref | 'invalid' | undefined {
  for (const notes of candidates) {
    const r = refIn(notes);
    if (r !== undefined) return r;
  }
  return undefined;
}

type Fields = Omit<MessageOf<typeof BillingPaymentEvent>, 'type' | 'topupId'>;

function describe(
  w: RazorpayWebhook,
): { fields: Fields; ref: Ref | 'invalid' | undefined } | string {
  switch (w.event) {
    case RazorpayWebhookEvents.linkPaid: {
      const { payment_link: link, payment, order } = w.payload;
      if (payment.entity.status !== 'captured') {
        return `payment_link.paid with payment ${payment.entity.id} in status ${payment.entity.status}`;
      }
      return {
        fields: {
          event: w.event,
          paymentId: payment.entity.id,
          linkId: link.entity.id,
          amountPaise: payment.entity.amount,
          currency: payment.entity.currency,
        },
        ref: findRef(link.entity.notes, order?.entity.notes, payment.entity.notes),
      };
    }
    case RazorpayWebhookEvents.captured:
    case RazorpayWebhookEvents.failed: {
      const { payment, order } = w.payload;
      const expected = w.event === RazorpayWebhookEvents.captured ? 'captured' : 'failed';
      if (payment.entity.status !== expected) {
        return `${w.event} with payment ${payment.entity.id} in status ${payment.entity.status}`;
      }
      const reason = payment.entity.error_description;
      return {
        fields: {
          event: w.event,
          paymentId: payment.entity.id,
          amountPaise: payment.entity.amount,
          currency: payment.entity.currency,
          ...(typeof reason === 'string' && reason.length > 0 ? { errorReason: reason } : {}),
        },
        ref: findRef(payment.entity.notes, order?.entity.notes),
      };
    }
    case RazorpayWebhookEvents.refunded: {
      const { refund, payment } = w.payload;
      return {
        fields: {
          event: w.event,
          paymentId: refund.entity.payment_id,
          refundId: refund.entity.id,
          amountPaise: refund.entity.amount,
          currency: refund.entity.currency,
        },
        ref: findRef(payment?.entity.notes, refund.entity.notes),
      };
    }
  }
}

/** The stored message's Nats-Msg-Id is `rzp-<x-razorpay-event-id>`: keep the event id. */
function eventIdFrom(msgId: string | undefined): string | undefined {
  if (msgId === undefined || !msgId.startsWith(RAZORPAY_INGRESS_MSG_PREFIX)) return undefined;
  const id = msgId.slice(RAZORPAY_INGRESS_MSG_PREFIX.length);
  return id.length > 0 && id.length <= 64 ? id : undefined;
}

export function routeRazorpayWebhook(data: Uint8Array, ingressMsgId?: string): Routed {
  let webhook: RazorpayWebhook;
  try {
    webhook = decodeRazorpayWebhook(data);
  } catch (err) {
    const e =
      err instanceof TerminalError
        ? err
        : new TerminalError(ErrorCodes.invalidPayload, String(err), err);
    return { kind: 'dead', code: e.code, reason: e.message };
  }
  const d = describe(webhook);
  if (typeof d === 'string') return { kind: 'dead', code: ErrorCodes.rejected, reason: d };
  if (d.ref === undefined) {
    return {
      kind: 'dead',
      code: IngressDlqCodes.unroutable,
      reason: `${webhook.event} for ${d.fields.paymentId} carries no player_id/topup_id notes`,
    };
  }
  if (d.ref === 'invalid') {
    return {
      kind: 'dead',
      code: ErrorCodes.badSubject,
      reason: `${webhook.event} for ${d.fields.paymentId}: player_id/topup_id notes are not valid ids`,
    };
  }
  const eventId = eventIdFrom(ingressMsgId);
  const message = {
    ...d.fields,
    topupId: d.ref.topupId,
    ...(eventId === undefined ? {} : { eventId }),
  };
  const fact = d.fields.refundId ?? d.fields.paymentId;
  try {
    return {
      kind: 'publish',
      subject: cmdSubject(ActorKinds.billing, d.ref.playerId, BillingVerbs.paymentEvent),
      msgId: `rzp-${fact}-${webhook.event}`,
      playerId: d.ref.playerId,
      event: webhook.event,
      message,
      data: BillingPaymentEvent.encode(message),
    };
  } catch (err) {
    // A field within Razorpay's schema but outside billing's contract (e.g. an over-long id).
    return {
      kind: 'dead',
      code: ErrorCodes.invalidPayload,
      reason: `${webhook.event} does not fit billing.payment_event.v1: ${err instanceof Error ? err.message.slice(0, 300) : String(err)}`,
    };
  }
}
