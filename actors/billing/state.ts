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
  closedMeters: 5,
  earlyPauses: 20,
  failedPayments: 50,
  history: 50,
  earlyPayments: 20,
  earlyRefunds: 20,
} as const;

/** A start of metering the session reported (the open, or a resume), at its tier's price. */
export const MeterStart = z.object({
  at: iso,
  tier: z.enum(Tiers),
  pricePerHourPaise: paise.positive(),
  /** Which report of the meter it was to arrive (0, 1, …). */
  n: z.number().int().nonnegative(),
});
export type MeterStart = z.infer<typeof MeterStart>;

/**
 * What the session reported about a meter, as a set: reports can arrive in another order than
 * sent (an outbox row published late), and the meter is computed from all of them
 * (reports.ts), so that a late one corrects it.
 */
export const MeterReports = z.object({
  /** The open; absent while a resume came without it (lost, or still on its way). */
  open: MeterStart.optional(),
  /** Each pause (the eviction's time), in time order, with when it arrived. */
  pauses: z.array(z.object({ at: iso, n: z.number().int().nonnegative() })),
  /** Each resume, in time order. */
  resumes: z.array(MeterStart),
  /** The close's time, once it came. */
  closedAt: iso.optional(),
  /** Reports received so far (the next one's `n`). */
  received: z.number().int().nonnegative(),
  /** Units accrued before reports were kept (a meter opened by an earlier version). */
  baseUnits: paise.nonnegative(),
});
export type MeterReports = z.infer<typeof MeterReports>;

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
  /**
   * The reports the fields above are computed from (absent in a meter opened by an earlier
   * version: reports.ts reads its fields as its reports).
   */
  reports: MeterReports.optional(),
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
  /**
   * The last meters closed (at most LIMITS.closedMeters): a pause or resume reported after the
   * close still changes what the session is charged.
   */
  closedMeters: z.array(Meter).default([]),
  /** Pauses that arrived before their session's open (at most LIMITS.earlyPauses). */
  earlyPauses: z.array(z.object({ sessionId: z.string(), at: iso })).default([]),
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
    closedMeters: [],
    earlyPauses: [],
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
