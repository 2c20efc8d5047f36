/** How money, durations and history read in the player's chat. Integer paise in, text out. */
import { duration, rupees } from '../../contracts/index.ts';
import type { HistoryLine } from './state.ts';

/** A signed amount for history lines: "+₹500.00", "-₹23.60". */
/** A tier as the player reads it. */
export const tierLabel = (tier: string): string => (tier === 'spot' ? 'Spot' : 'On-Demand');

export function signedRupees(paise: number): string {
  return paise > 0 ? `+${rupees(paise)}` : rupees(paise);
}

/** Whole minutes `paise` buys at `pricePerHourPaise` (rounded down, never negative). */
export function minutesFor(paise: number, pricePerHourPaise: number): number {
  if (paise <= 0) return 0;
  return Math.floor((paise * 60) / pricePerHourPaise);
}

/** "1 minute", "45 minutes", "16 h 40 min": a whole number of minutes as the player reads it. */
export function minutesText(n: number): string {
  if (n < 60) return n === 1 ? '1 minute' : `${n} minutes`;
  return duration(n * 60_000);
}

/** "7 Dec 2026, 06:38 IST": the player's clock (`timeZone`, an IANA name), not the server's. */
function stamper(timeZone: string): (isoTime: string) => string {
  const f = new Intl.DateTimeFormat('en-IN', {
    timeZone,
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  });
  return (isoTime) => f.format(new Date(isoTime));
}

/** Whether `timeZone` is an IANA time zone this runtime knows. */
export function knownTimeZone(timeZone: string): boolean {
  try {
    stamper(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** Telegram's limit is 4096 characters; older lines are left out to stay under it. */
const MAX_TEXT = 4000;

export function historyText(
  lines: readonly HistoryLine[],
  limit: number,
  timeZone: string,
): string {
  if (lines.length === 0) return 'No wallet activity yet.';
  const stamp = stamper(timeZone);
  const shown = lines.slice(-limit).reverse();
  const body: string[] = [];
  let size = 60;
  for (const l of shown) {
    const line = `${stamp(l.at)}  ${signedRupees(l.amountPaise)}  ${l.label.slice(0, 120)}  → ${rupees(l.balanceAfterPaise)}`;
    if (size + line.length + 1 > MAX_TEXT) break;
    size += line.length + 1;
    body.push(line);
  }
  const heading =
    body.length === 1 ? 'Last wallet entry:' : `Last ${body.length} wallet entries (newest first):`;
  return [heading, ...body].join('\n');
}
