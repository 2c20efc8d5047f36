/**
 * Commands to a player's billing actor (`respawn.billing.<playerId>.cmd.<verb>`) and what it
 * tells the session actor. Money is integer paise everywhere.
 */
import { z } from 'zod';
import { chatIdSchema as chatId, sessionIdSchema as sessionId } from './ids.ts';
import { defineMessage } from './message.ts';

export const Tiers = { spot: 'spot', onDemand: 'on_demand' } as const;
export type Tier = (typeof Tiers)[keyof typeof Tiers];

const paise = z.number().int().safe();
const iso = z.iso.datetime();
const topupId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const currency = z.string().regex(/^[A-Z]{3}$/);
const linkId = z.string().regex(/^plink_[A-Za-z0-9]{1,40}$/);
const paymentId = z.string().regex(/^pay_[A-Za-z0-9]{1,40}$/);
const refundId = z.string().regex(/^rfnd_[A-Za-z0-9]{1,40}$/);
/** Razorpay's reference_id: at most 40 characters. */
const referenceId = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/);

export const BillingVerbs = {
  admit: 'admit',
  meterOpen: 'meter_open',
  meterPause: 'meter_pause',
  meterResume: 'meter_resume',
  meterClose: 'meter_close',
  topup: 'topup',
  paymentLinkCreated: 'payment_link_created',
  paymentLinkFailed: 'payment_link_failed',
  paymentEvent: 'payment_event',
  linkStatus: 'link_status',
  adjust: 'adjust',
  balance: 'balance',
  history: 'history',
  register: 'register',
} as const;
export type BillingVerb = (typeof BillingVerbs)[keyof typeof BillingVerbs];

/** Events the billing actor publishes on `respawn.billing.<playerId>.evt.<event>`. */
export const BillingEvents = { paymentHeld: 'payment_held', registered: 'registered' } as const;

/** Session → billing: may this player start? The answer is `session.admission.v1`. */
export const BillingAdmit = defineMessage('billing.admit.v1', {
  sessionId,
  chatId: chatId.optional(),
  /** Price per hour of the cheapest tier currently available, for the minimum-minutes rule. */
  cheapestPricePerHourPaise: paise.positive(),
});

/** Session → billing: the VM is ready; meter from `at` at `pricePerHourPaise`. */
export const BillingMeterOpen = defineMessage('billing.meter_open.v1', {
  sessionId,
  chatId: chatId.optional(),
  tier: z.enum(Tiers),
  pricePerHourPaise: paise.positive(),
  at: iso,
});

/** Session → billing: evicted at `at`; nothing is charged until `meter_resume`. */
export const BillingMeterPause = defineMessage('billing.meter_pause.v1', {
  sessionId,
  at: iso,
});

/** Session → billing: resumed (ready again) at `at`, possibly on another tier. */
export const BillingMeterResume = defineMessage('billing.meter_resume.v1', {
  sessionId,
  tier: z.enum(Tiers),
  pricePerHourPaise: paise.positive(),
  at: iso,
});

/** Session → billing: the session ended at `at`. */
export const BillingMeterClose = defineMessage('billing.meter_close.v1', {
  sessionId,
  at: iso,
  reason: z.string().max(64),
});

/** Player (via the bot router) → billing: top up this amount. */
export const BillingTopup = defineMessage('billing.topup.v1', {
  requestId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  chatId,
  amountPaise: paise.positive(),
});

/**
 * Player (the bot router, on /start) → billing: open the player's account. The first one
 * registers the player (the `registered` event, once); every one remembers the chat, where
 * billing's messages go from then on.
 */
export const BillingRegister = defineMessage('billing.register.v1', { chatId });

/** Billing → operators: a player's account was opened (their first /start). */
export const BillingRegistered = defineMessage('billing.registered.v1', {
  playerId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/),
  at: iso,
});

/** Player → billing: show balance / history (answers go to Telegram). */
export const BillingBalance = defineMessage('billing.balance.v1', { chatId });
export const BillingHistory = defineMessage('billing.history.v1', {
  chatId,
  limit: z.number().int().min(1).max(50).default(10),
});

/** Billing → session: the answer to `billing.admit.v1`. */
export const SessionAdmission = defineMessage('session.admission.v1', {
  sessionId,
  allowed: z.boolean(),
  balancePaise: paise,
  requiredPaise: paise,
});

/** Razorpay effects runner → billing: the payment link for a top-up exists. */
export const BillingPaymentLinkCreated = defineMessage('billing.payment_link_created.v1', {
  topupId,
  referenceId,
  linkId,
  shortUrl: z.url(),
  amountPaise: paise.positive(),
  currency,
});

/** Razorpay effects runner → billing: the payment link could not be created. */
export const BillingPaymentLinkFailed = defineMessage('billing.payment_link_failed.v1', {
  topupId,
  error: z.object({
    code: z.string().min(1).max(64),
    message: z.string().max(500),
    retryable: z.boolean(),
  }),
});

/** The Razorpay webhook events billing acts on (names as Razorpay sends them). */
export const PaymentEventKinds = {
  linkPaid: 'payment_link.paid',
  captured: 'payment.captured',
  failed: 'payment.failed',
  refunded: 'refund.processed',
} as const;
export type PaymentEventKind = (typeof PaymentEventKinds)[keyof typeof PaymentEventKinds];

/**
 * Ingress router → billing: a verified Razorpay webhook, reduced to what billing needs.
 * `amountPaise`/`currency` are the payment's (or the refund's), as Razorpay reported them.
 */
export const BillingPaymentEvent = defineMessage('billing.payment_event.v1', {
  event: z.enum(PaymentEventKinds),
  topupId,
  paymentId,
  linkId: linkId.optional(),
  refundId: refundId.optional(),
  amountPaise: paise.nonnegative(),
  currency,
  /** Razorpay's `x-razorpay-event-id`, for the audit trail. */
  eventId: z.string().max(64).optional(),
  /** payment.failed: Razorpay's error description, shown to nobody but the operator. */
  errorReason: z.string().max(500).optional(),
});

export const LinkStatuses = {
  created: 'created',
  partiallyPaid: 'partially_paid',
  expired: 'expired',
  cancelled: 'cancelled',
  paid: 'paid',
} as const;

/** Razorpay effects runner → billing: a payment link as fetched (reconciliation). */
export const BillingLinkStatus = defineMessage('billing.link_status.v1', {
  topupId,
  linkId,
  status: z.enum(LinkStatuses),
  amountPaidPaise: paise.nonnegative(),
  currency,
  payments: z
    .array(
      z.object({
        paymentId,
        amountPaise: paise.nonnegative(),
        status: z.string().min(1).max(32),
      }),
    )
    .max(20),
});

/** Operator (or a support tool) → billing: credit (positive) or debit (negative) by hand. */
export const BillingAdjust = defineMessage('billing.adjust.v1', {
  adjustmentId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  amountPaise: paise.refine((v) => v !== 0, 'must not be zero'),
  note: z.string().min(1).max(200),
  requestedBy: z.enum(['operator', 'system']),
});

export const HoldReasons = {
  amountMismatch: 'amount_mismatch',
  unknownTopup: 'unknown_topup',
  secondPayment: 'second_payment',
  refundUnknownPayment: 'refund_unknown_payment',
} as const;
export type HoldReason = (typeof HoldReasons)[keyof typeof HoldReasons];

/** Billing → operators: a payment was recorded but not credited; someone must look at it. */
export const BillingPaymentHeld = defineMessage('billing.payment_held.v1', {
  playerId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/),
  reason: z.enum(HoldReasons),
  topupId,
  paymentId: paymentId.optional(),
  refundId: refundId.optional(),
  amountPaise: paise,
  currency,
  expectedAmountPaise: paise.optional(),
  expectedCurrency: currency.optional(),
});
