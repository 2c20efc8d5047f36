/**
 * Razorpay, both ways: the effects billing asks the gateway to carry out on
 * `respawn.out.razorpay`, and the schemas of the webhooks Razorpay posts (stored raw on
 * `respawn.in.razorpay` and decoded by the ingress router). Money is integer paise.
 */
import { AckPolicy, DeliverPolicy, type ConsumerConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { z } from 'zod';
import { ErrorCodes, TerminalError } from './errors.ts';
import { defineMessage, parseJson } from './message.ts';
import { ROOT, ingressSubject, outRazorpaySubject, validToken } from './subjects.ts';

const paise = z.number().int().safe();
const playerId = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/);
const topupId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const currency = z.string().regex(/^[A-Z]{3}$/);

/** Billing → gateway: create a payment link for a top-up. `referenceId` is unique per top-up. */
export const RazorpayCreateLink = defineMessage('razorpay.create_link.v1', {
  playerId,
  topupId,
  /** Razorpay's `reference_id` (at most 40 characters, unique per account). */
  referenceId: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/),
  amountPaise: paise.positive(),
  currency,
  description: z.string().min(1).max(200),
  /** The link stops accepting payments at this time. */
  expireBy: z.iso.datetime(),
});

/** Billing → gateway: fetch a link's status and payments (reconciliation). */
export const RazorpayFetchLink = defineMessage('razorpay.fetch_link.v1', {
  playerId,
  topupId,
  linkId: z.string().regex(/^plink_[A-Za-z0-9]{1,40}$/),
});

/**
 * Dead letters of the Razorpay ingress router and effects runner (neither is an actor kind):
 * `nats sub 'respawn.dlq.razorpay.>'`.
 */
export function razorpayDlqSubject(code: string): string {
  return `${ROOT}.dlq.razorpay.${validToken(code, 'code')}`;
}

/** Durable consumers: the ingress router on RESPAWN_IN, the effects runner on RESPAWN_OUT. */
export const RAZORPAY_INGRESS_CONSUMER = 'ingress-razorpay';
export const RAZORPAY_EFFECTS_CONSUMER = 'gateway-razorpay';

/** The ingress router's durable consumer of verified webhooks (stream RESPAWN_IN). */
export function razorpayIngressConsumer(): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: RAZORPAY_INGRESS_CONSUMER,
    description: 'Razorpay webhooks to billing commands',
    filter_subject: ingressSubject('razorpay'),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(10_000),
    max_ack_pending: 64,
    max_deliver: -1,
    max_waiting: 512,
  };
}

/**
 * The effects runner's durable consumer (stream RESPAWN_OUT). A Razorpay call can take its
 * full timeout; the runner extends the ack while it waits.
 */
export function razorpayEffectsConsumer(): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: RAZORPAY_EFFECTS_CONSUMER,
    description: 'Gateway: Razorpay API calls billing asked for',
    filter_subject: outRazorpaySubject(),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30_000),
    max_ack_pending: 16,
    max_deliver: -1,
    max_waiting: 512,
  };
}

/** Webhook Nats-Msg-Id on RESPAWN_IN: `rzp-<x-razorpay-event-id>` (set by the gateway). */
export const RAZORPAY_INGRESS_MSG_PREFIX = 'rzp-';

// ---------------------------------------------------------------------------------------
// Webhooks, as Razorpay sends them. Only the fields Respawn reads are declared; the rest is
// kept in the raw body stored on RESPAWN_IN.

/**
 * Razorpay sends `notes` as an object, or as `[]` when there are none. Only `player_id` and
 * `topup_id` are read (the ingress route checks them); any other note, whatever its value,
 * never makes a webhook unreadable: a captured payment would wait for reconciliation.
 */
const notes = z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]);
export type RazorpayNotes = z.infer<typeof notes>;

const paymentEntity = z.object({
  id: z.string().regex(/^pay_[A-Za-z0-9]{1,40}$/),
  amount: paise.nonnegative(),
  currency,
  status: z.string().min(1).max(32),
  order_id: z.string().max(64).nullable().optional(),
  notes: notes.optional(),
  error_description: z.string().max(500).nullable().optional(),
});

const linkEntity = z.object({
  id: z.string().regex(/^plink_[A-Za-z0-9]{1,40}$/),
  amount: paise.nonnegative(),
  amount_paid: paise.nonnegative(),
  currency,
  status: z.string().min(1).max(32),
  reference_id: z.string().max(40).nullable().optional(),
  notes: notes.optional(),
});

const orderEntity = z.object({
  id: z.string().max(64),
  notes: notes.optional(),
});

const refundEntity = z.object({
  id: z.string().regex(/^rfnd_[A-Za-z0-9]{1,40}$/),
  payment_id: z.string().regex(/^pay_[A-Za-z0-9]{1,40}$/),
  amount: paise.nonnegative(),
  currency,
  status: z.string().min(1).max(32),
  notes: notes.optional(),
});

const wrap = <T extends z.ZodType>(entity: T) => z.object({ entity });

const envelope = {
  entity: z.literal('event'),
  account_id: z.string().max(64).optional(),
  contains: z.array(z.string().max(64)).max(16),
  created_at: z.number().int().nonnegative(),
};

export const RazorpayWebhookEvents = {
  linkPaid: 'payment_link.paid',
  captured: 'payment.captured',
  failed: 'payment.failed',
  refunded: 'refund.processed',
} as const;

export const RazorpayWebhook = z.discriminatedUnion('event', [
  z.object({
    ...envelope,
    event: z.literal(RazorpayWebhookEvents.linkPaid),
    payload: z.object({
      payment_link: wrap(linkEntity),
      payment: wrap(paymentEntity),
      order: wrap(orderEntity).optional(),
    }),
  }),
  z.object({
    ...envelope,
    event: z.literal(RazorpayWebhookEvents.captured),
    payload: z.object({ payment: wrap(paymentEntity), order: wrap(orderEntity).optional() }),
  }),
  z.object({
    ...envelope,
    event: z.literal(RazorpayWebhookEvents.failed),
    payload: z.object({ payment: wrap(paymentEntity), order: wrap(orderEntity).optional() }),
  }),
  z.object({
    ...envelope,
    event: z.literal(RazorpayWebhookEvents.refunded),
    payload: z.object({ refund: wrap(refundEntity), payment: wrap(paymentEntity).optional() }),
  }),
]);
export type RazorpayWebhook = z.infer<typeof RazorpayWebhook>;

const known = new Set<string>(Object.values(RazorpayWebhookEvents));

/**
 * Validates a webhook's raw body. Throws a TerminalError: `invalid_json`, `unknown_type` (an
 * event Respawn does not handle) or `invalid_payload` (a handled event with missing or
 * mistyped fields).
 */
export function decodeRazorpayWebhook(data: Uint8Array): RazorpayWebhook {
  const raw = parseJson(data);
  const event = typeof raw === 'object' && raw !== null && 'event' in raw ? raw.event : undefined;
  if (typeof event !== 'string' || !known.has(event)) {
    throw new TerminalError(
      ErrorCodes.unknownType,
      `razorpay event ${JSON.stringify(event)} is not one of ${[...known].join(', ')}`,
    );
  }
  const r = RazorpayWebhook.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new TerminalError(
      ErrorCodes.invalidPayload,
      `invalid razorpay ${event}: ${issues}`,
      r.error,
    );
  }
  return r.data;
}
