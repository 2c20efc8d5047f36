/**
 * Metering arithmetic, in integers only. A meter accrues whole seconds × price per hour
 * ("units", paise·s/h) per running segment; what is due at time t is
 * floor(units(t) / 3600) paise, and every settlement charges due − already charged. So the
 * ledger never charges more than the exact amount and trails it by less than one paisa.
 * Partial seconds of a segment (at a pause or a close) are not charged.
 */
import type { Tier } from '../../contracts/index.ts';
import type { Meter } from './state.ts';

const SECONDS_PER_HOUR = 3600;

const ms = (isoTime: string): number => new Date(isoTime).getTime();

/** Whole seconds the current segment has run at `t` (0 when paused or `t` is before it). */
export function runningSeconds(m: Meter, t: Date): number {
  if (m.runningSince === null) return 0;
  return Math.max(0, Math.floor((t.getTime() - ms(m.runningSince)) / 1000));
}

export function unitsAt(m: Meter, t: Date): number {
  return m.accruedUnits + runningSeconds(m, t) * m.pricePerHourPaise;
}

/** Paise due for this meter from its opening to `t`, rounded down. */
export function dueAt(m: Meter, t: Date): number {
  return Math.floor(unitsAt(m, t) / SECONDS_PER_HOUR);
}

/** Due at `t` but not yet charged; negative when a settlement ran ahead of a pause or close. */
export function unsettledAt(m: Meter, t: Date): number {
  return dueAt(m, t) - m.chargedPaise;
}

export function openMeter(
  sessionId: string,
  tier: Tier,
  pricePerHourPaise: number,
  at: string,
): Meter {
  return {
    sessionId,
    tier,
    pricePerHourPaise,
    openedAt: at,
    runningSince: at,
    pausedAt: null,
    accruedUnits: 0,
    chargedPaise: 0,
    settlements: 0,
  };
}

/** Ends the running segment at `at`: its whole seconds become accrued units. */
export function pauseMeter(m: Meter, at: Date): Meter {
  if (m.runningSince === null) return m;
  return {
    ...m,
    accruedUnits: unitsAt(m, at),
    runningSince: null,
    pausedAt: at.toISOString(),
  };
}

/** Starts a new segment at `at` (never before the pause), possibly on another tier. */
export function resumeMeter(m: Meter, at: Date, tier: Tier, pricePerHourPaise: number): Meter {
  if (m.runningSince !== null) return m;
  const from = m.pausedAt !== null && ms(m.pausedAt) > at.getTime() ? new Date(m.pausedAt) : at;
  return {
    ...m,
    tier,
    pricePerHourPaise,
    runningSince: from.toISOString(),
    pausedAt: null,
  };
}

export interface Settlement {
  readonly meter: Meter;
  /** Ledger amount: negative charges, positive gives back what a settlement ran ahead. */
  readonly amountPaise: number;
  /** The settlement's number (the n of its idempotency key); undefined when nothing is due. */
  readonly n: number | undefined;
}

/** Brings the charged amount to what is due at `t`. */
export function settleMeter(m: Meter, t: Date): Settlement {
  const due = dueAt(m, t);
  const delta = due - m.chargedPaise;
  if (delta === 0) return { meter: m, amountPaise: 0, n: undefined };
  const n = m.settlements + 1;
  return {
    meter: { ...m, chargedPaise: due, settlements: n },
    amountPaise: -delta,
    n,
  };
}

/** Session ids come from another actor: the player in the key keeps it unique regardless. */
export function usageKey(playerId: string, sessionId: string, n: number): string {
  return `usage:${playerId}:${sessionId}:${n}`;
}

/** Sum of running meters' prices, paise per hour. */
export function ratePerHour(meters: readonly Meter[]): number {
  return meters.reduce((sum, m) => sum + (m.runningSince === null ? 0 : m.pricePerHourPaise), 0);
}

/**
 * How long `availablePaise` lasts at `ratePerHourPaise`, in ms, rounded down; 0 when nothing
 * is left. Infinity when nothing is metered.
 */
export function creditLastsMs(availablePaise: number, ratePerHourPaise: number): number {
  if (ratePerHourPaise <= 0) return Number.POSITIVE_INFINITY;
  if (availablePaise <= 0) return 0;
  return Math.floor((availablePaise * 3_600_000) / ratePerHourPaise);
}
