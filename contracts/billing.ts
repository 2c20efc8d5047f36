/**
 * Commands to a player's billing actor (`respawn.billing.<playerId>.cmd.<verb>`) and what it
 * tells the session actor. Money is integer paise everywhere.
 */
import { z } from 'zod';
import { defineMessage } from './message.ts';

export const Tiers = { spot: 'spot', onDemand: 'on_demand' } as const;
export type Tier = (typeof Tiers)[keyof typeof Tiers];

const paise = z.number().int().safe();
const sessionId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const chatId = z.string().regex(/^-?\d{1,20}$/);
const iso = z.iso.datetime();

export const BillingVerbs = {
  admit: 'admit',
  meterOpen: 'meter_open',
  meterPause: 'meter_pause',
  meterResume: 'meter_resume',
  meterClose: 'meter_close',
  topup: 'topup',
  paymentLinkCreated: 'payment_link_created',
  paymentEvent: 'payment_event',
  balance: 'balance',
  history: 'history',
} as const;

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
