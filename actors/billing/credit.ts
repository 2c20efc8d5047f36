/**
 * Running out of credit. From the balance, what running meters owe and their combined rate,
 * the actor knows when credit ends; it keeps one durable timer per warning point that is
 * still ahead and one for the end. A warning point already inside the window is sent at once
 * (one message, however many points it covers); at zero the session actor is asked to stop.
 * Anything that changes balance or rate calls `replan`, so a top-up moves or cancels them.
 *
 * Each warning and the out-of-credit notice is a new message, never an edit: an edit makes no
 * notification, and an edit target outlives the session it was about. They share a
 * `collapseKey`, so one still waiting for its chat's turn behind a newer one is dropped unsent:
 * the newer alert always goes out.
 */
import { ActorKinds, SessionStop, StopReasons, cmdSubject, rupees } from '../../contracts/index.ts';
import { emit } from '../runtime/index.ts';
import { minutesText } from './format.ts';
import { creditLastsMs, ratePerHour, unsettledAt } from './meter.ts';
import type { BillingState } from './state.ts';
import type { Work } from './work.ts';

export const OUT_OF_CREDIT_TIMER = 'out_of_credit';
/** The warnings' and the out-of-credit notice's collapseKey (see `TelegramSend`). */
export const CREDIT_ALERT = 'billing:credit';
/** How long after an out-of-credit stop billing asks again while anything is still metered. */
export const STOP_AGAIN_MS = 2 * 60_000;
export const warnTimer = (minutes: number): string => `warn-${minutes}`;

/** Timers firing this close to their point count as on time (rounding, sweeper latency). */
export const SLACK_MS = 5_000;

/** Balance after settling every meter now: what the player can still spend. */
export function availablePaise(s: BillingState, now: Date): number {
  let owed = 0;
  for (const m of Object.values(s.meters)) owed += unsettledAt(m, now);
  return s.balancePaise - owed;
}

/** Paise needed to start: `minMinutes` at the cheapest available tier, rounded up. */
export function requiredPaise(minMinutes: number, pricePerHourPaise: number): number {
  return Math.ceil((minMinutes * pricePerHourPaise) / 60);
}

/** Admission's rule, which `/balance` repeats: a positive balance covering `required`. */
export function canStart(availablePaise: number, required: number): boolean {
  return availablePaise > 0 && availablePaise >= required;
}

export function replan(w: Work): void {
  const { s, now, cfg } = w;
  const points = [...new Set(cfg.warnMinutes)].sort((a, b) => b - a);
  const rate = ratePerHour(Object.values(s.meters));
  if (rate === 0) {
    for (const p of points) w.disarm(warnTimer(p));
    w.disarm(OUT_OF_CREDIT_TIMER);
    s.credit = { warned: [], endsAt: null, stopRequestedAt: null };
    return;
  }
  const available = availablePaise(s, now);
  const lastsMs = creditLastsMs(available, rate);
  const endsAt = new Date(now.getTime() + lastsMs);
  s.credit.endsAt = endsAt.toISOString();

  // A top-up lifted the balance above a point already warned about: warn again when it comes.
  s.credit.warned = s.credit.warned.filter((p) => p * 60_000 + SLACK_MS >= lastsMs);
  const dueNow: number[] = [];
  for (const p of points) {
    const pointMs = p * 60_000;
    if (s.credit.warned.includes(p)) {
      w.disarm(warnTimer(p));
    } else if (pointMs + SLACK_MS >= lastsMs) {
      dueNow.push(p);
      w.disarm(warnTimer(p));
    } else {
      w.arm(warnTimer(p), new Date(endsAt.getTime() - pointMs));
    }
  }
  if (lastsMs <= SLACK_MS) {
    requestStop(w, available);
    // Asked again while anything is still metered: a stop the session could not act on (its
    // meter outlived the session) must not leave the player charged for ever.
    w.arm(OUT_OF_CREDIT_TIMER, new Date(now.getTime() + STOP_AGAIN_MS));
    return;
  }
  if (dueNow.length > 0 && s.credit.stopRequestedAt === null) {
    s.credit.warned.push(...dueNow);
    const left = Math.max(1, Math.ceil(lastsMs / 60_000));
    w.tell({
      text:
        `⏳ About ${minutesText(left)} of play left (balance ${rupees(Math.max(0, available))}). ` +
        'Top up to keep playing; at zero your session stops and your disk is kept.',
      buttons: w.topupButtons(),
      collapseKey: CREDIT_ALERT,
    });
  }
  w.arm(OUT_OF_CREDIT_TIMER, endsAt);
}

function requestStop(w: Work, available: number): void {
  const { s } = w;
  const asked = s.credit.stopRequestedAt;
  if (asked !== null && w.now.getTime() - Date.parse(asked) < STOP_AGAIN_MS - SLACK_MS) return;
  s.credit.stopRequestedAt = w.now.toISOString();
  w.send(
    emit(SessionStop, cmdSubject(ActorKinds.session, w.player, 'stop'), {
      requestedBy: 'system',
      reason: StopReasons.outOfCredit,
      note: `balance ${rupees(available)}`,
      meteredSessionIds: Object.keys(s.meters).slice(0, 8),
    }),
  );
  // The player is told once; asking the session again is billing's business.
  if (asked !== null) return;
  w.tell({
    text: '🛑 Out of credit: your session is stopping. Your disk and saves are kept; top up to play again.',
    buttons: w.topupButtons(),
    collapseKey: CREDIT_ALERT,
  });
}
