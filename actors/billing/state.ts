/**
 * A player's wallet as the billing actor keeps it. The balance is a cache of the ledger's sum
 * (every change to it comes with a ledger record in the same transaction); the sets of
 * credited payments, refunds and adjustments make every money message idempotent from state
 * alone, so the ledger's unique key is only the last line of defence.
 */
import { z } from 'zod';
import { Tiers } from '../../contracts/index.ts';

const paise = z.number().int().safe();
const iso = z.iso.datetime();

/** How many finished top-ups, closed sessions and history lines the state remembers. */
export const LIMITS = {
  finishedTopups: 20,
  closedSessions: 20,
  failedPayments: 50,
  history: 50,
  earlyPayments: 20,
  earlyRefunds: 20,
} as const;

export const Meter = z.object({
  sessionId: z.string(),
  tier: z.enum(Tiers),
  pricePerHourPaise: paise.positive(),
  openedAt: iso,
  /** Start of the current running segment; null while paused (evicted). */
  runningSince: iso.nullable(),
  pausedAt: iso.nullable(),
  /** Σ over finished segments of whole seconds × price per hour (paise·s/h). */
  accruedUnits: paise.nonnegative(),
  /** What the ledger has charged for this meter so far (positive paise). */
  chargedPaise: paise,
  /** Settlement entries written: the n of `usage:<playerId>:<sessionId>:<n>`. */
  settlements: z.number().int().nonnegative(),
});
export type Meter = z.infer<typeof Meter>;

export const TopupStatuses = {
  creating: 'creating',
  pending: 'pending',
  paid: 'paid',
  failed: 'failed',
  expired: 'expired',
} as const;

export const Topup = z.object({
  id: z.string(),
  referenceId: z.string(),
  amountPaise: paise.positive(),
  currency: z.string(),
  chatId: z.string(),
  createdAt: iso,
  status: z.enum(TopupStatuses),
  linkId: z.string().optional(),
  shortUrl: z.string().optional(),
  /** The payment credited for this top-up. */
  paymentId: z.string().optional(),
});
export type Topup = z.infer<typeof Topup>;

/**
 * A captured payment that arrived before its top-up (held as `unknown_topup`): credited when
 * the top-up arrives with the same amount. Live, a payment cannot precede its link, but the
 * Telegram and Razorpay routers are independent consumers, so a replay into a deployment that
 * lags can deliver the recorded payment first.
 */
export const EarlyPayment = z.object({
  paymentId: z.string(),
  amountPaise: paise.positive(),
  currency: z.string(),
  /** The hold written when it arrived, resolved when it is credited. */
  holdKey: z.string(),
});
export type EarlyPayment = z.infer<typeof EarlyPayment>;

/** A refund of a payment not credited yet: applied when it is (refunds.ts). */
export const EarlyRefund = z.object({
  topupId: z.string(),
  paymentId: z.string(),
  refundId: z.string(),
  amountPaise: paise,
  currency: z.string(),
  /** The hold written when it arrived, resolved when it is applied. */
  holdKey: z.string(),
});

export const LedgerReasons = {
  topup: 'topup',
  usage: 'usage',
  refund: 'refund',
  adjustment: 'adjustment',
} as const;
export type LedgerReason = (typeof LedgerReasons)[keyof typeof LedgerReasons];

/** A line of `/history`: a ledger entry, or a session's usage entries merged into one. */
export const HistoryLine = z.object({
  at: iso,
  reason: z.enum(LedgerReasons),
  amountPaise: paise,
  balanceAfterPaise: paise,
  label: z.string(),
  sessionId: z.string().optional(),
});
export type HistoryLine = z.infer<typeof HistoryLine>;

export const BillingState = z.object({
  balancePaise: paise,
  /** The chat the player last talked to billing from (warnings go there). */
  chatId: z.string().optional(),
  /** When the player's account was opened (their first /start; older accounts: unset). */
  registeredAt: z.string().optional(),
  /**
   * The cheapest price per hour the session actor last asked admission with, so `/balance`
   * states the same minimum as admission; before any admission, the displayed prices stand in.
   */
  startPricePerHourPaise: paise.positive().optional(),
  meters: z.record(z.string(), Meter),
  closedSessions: z.array(z.string()),
  topups: z.record(z.string(), Topup),
  creditedPayments: z.array(z.string()),
  refunds: z.array(z.string()),
  adjustments: z.array(z.string()),
  failedPayments: z.array(z.string()),
  /** Keys of payments held for an operator (`hold:<id>:<reason>`). */
  held: z.array(z.string()),
  /** Payments for top-ups not seen yet, by top-up id (at most LIMITS.earlyPayments). */
  early: z.record(z.string(), EarlyPayment).default({}),
  /** Refunds of payments not credited yet, oldest first (at most LIMITS.earlyRefunds). */
  earlyRefunds: z.array(EarlyRefund).default([]),
  history: z.array(HistoryLine),
  /** Durable timers this actor has armed, by name, with their due time. */
  timers: z.record(z.string(), iso),
  credit: z.object({
    /** Warning points (minutes) already sent in the current low-credit stretch. */
    warned: z.array(z.number().int()),
    /** When credit runs out at the current rate; null when nothing is metered. */
    endsAt: iso.nullable(),
    stopRequestedAt: iso.nullable(),
  }),
});
export type BillingState = z.infer<typeof BillingState>;

export function initialBillingState(): BillingState {
  return {
    balancePaise: 0,
    meters: {},
    closedSessions: [],
    topups: {},
    creditedPayments: [],
    refunds: [],
    adjustments: [],
    failedPayments: [],
    held: [],
    early: {},
    earlyRefunds: [],
    history: [],
    timers: {},
    credit: { warned: [], endsAt: null, stopRequestedAt: null },
  };
}
