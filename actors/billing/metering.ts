/**
 * Meter messages from the session actor and the settlement timer. A meter opens when the VM
 * is ready, pauses at the eviction time (nothing is charged until it resumes), and closes at
 * the stop; each of these and every `settle` timer writes a settlement entry for what became
 * due, so a crash loses nothing and, with the idempotency keys, charges nothing twice. The
 * session's reports may arrive in any order: the meter is computed from all of them
 * (reports.ts), so a late one corrects it, even after the close.
 */
import type {
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  MessageOf,
  Tier,
} from '../../contracts/index.ts';
import { rupees } from '../../contracts/index.ts';
import { tierLabel } from './format.ts';
import { replan } from './credit.ts';
import { settleMeter, usageKey } from './meter.ts';
import {
  metered,
  newMeter,
  reportsOf,
  withClose,
  withOpen,
  withPause,
  withResume,
  type Reported,
} from './reports.ts';
import { LIMITS, type Meter, type MeterReports } from './state.ts';
import type { Work } from './work.ts';

export const SETTLE_TIMER = 'settle';

function settle(w: Work, m: Meter, at: Date): Meter {
  const r = settleMeter(m, at);
  if (r.n !== undefined) {
    w.post({
      key: usageKey(w.player, m.sessionId, r.n),
      amountPaise: r.amountPaise,
      reason: 'usage',
      sessionId: m.sessionId,
      label: `${tierLabel(m.tier)} session ${m.sessionId}`,
    });
  }
  return r.meter;
}

function running(w: Work): Meter[] {
  return Object.values(w.s.meters).filter((m) => m.runningSince !== null);
}

/** Keeps the settle timer armed exactly while something is metered. */
function rearmSettle(w: Work): void {
  if (running(w).length === 0) w.disarm(SETTLE_TIMER);
  else if (!(SETTLE_TIMER in w.s.timers)) {
    w.arm(SETTLE_TIMER, new Date(w.now.getTime() + w.cfg.settleIntervalMs));
  }
}

/** With the pauses that came before their session's open (taken out of the waiting list). */
function early(w: Work, sessionId: string): (r: MeterReports) => MeterReports {
  const pauses = w.s.earlyPauses.filter((p) => p.sessionId === sessionId);
  w.s.earlyPauses = w.s.earlyPauses.filter((p) => p.sessionId !== sessionId);
  return (r) => pauses.reduce((x, p) => withPause(x, p.at), r);
}

/** Books what a change of reports made due when the meter is not running (the timer does, else). */
function booked(w: Work, m: Meter): Meter {
  return m.runningSince === null ? settle(w, m, w.now) : m;
}

/**
 * A report about a meter, whichever order it comes in: added to the meter's reports (live, or
 * closed a moment ago: the late report still changes what the session is charged). False when
 * billing has no meter for the session.
 */
function report(w: Work, sessionId: string, add: (r: MeterReports) => MeterReports): boolean {
  const live = w.s.meters[sessionId];
  if (live !== undefined) {
    w.s.meters[sessionId] = booked(w, metered(live, add(reportsOf(live))));
  } else {
    const i = w.s.closedMeters.findIndex((m) => m.sessionId === sessionId);
    const closed = w.s.closedMeters[i];
    if (closed === undefined) return false;
    const m = booked(w, metered(closed, add(reportsOf(closed))));
    w.s.closedMeters = w.s.closedMeters.map((c, j) => (j === i ? m : c));
  }
  rearmSettle(w);
  replan(w);
  return true;
}

const reported = (msg: { at: string; tier: Tier; pricePerHourPaise: number }): Reported => ({
  at: msg.at,
  tier: msg.tier,
  pricePerHourPaise: msg.pricePerHourPaise,
});

/** A new meter from its first start (its open, or a resume whose open has not come). */
function open(
  w: Work,
  sessionId: string,
  first: Reported,
  add: (r: MeterReports) => MeterReports,
): void {
  w.s.meters[sessionId] = booked(w, newMeter(sessionId, first, add));
  rearmSettle(w);
  replan(w);
}

export function onMeterOpen(w: Work, msg: MessageOf<typeof BillingMeterOpen>): void {
  if (msg.chatId !== undefined) w.s.chatId = msg.chatId;
  const start = reported(msg);
  // A resume came first: the open adds the first rig (a repeated open changes nothing).
  if (report(w, msg.sessionId, (r) => withOpen(r, start))) return;
  if (w.s.closedSessions.includes(msg.sessionId)) return;
  const pauses = early(w, msg.sessionId);
  open(w, msg.sessionId, start, (r) => pauses(withOpen(r, start)));
}

export function onMeterPause(w: Work, msg: MessageOf<typeof BillingMeterPause>): void {
  if (report(w, msg.sessionId, (r) => withPause(r, msg.at))) return;
  if (w.s.closedSessions.includes(msg.sessionId)) return;
  // Its open is still on its way: the pause waits for it.
  w.s.earlyPauses = [...w.s.earlyPauses, { sessionId: msg.sessionId, at: msg.at }].slice(
    -LIMITS.earlyPauses,
  );
}

export function onMeterResume(w: Work, msg: MessageOf<typeof BillingMeterResume>): void {
  const start = reported(msg);
  if (report(w, msg.sessionId, (r) => withResume(r, start))) return;
  // The open was lost or is late: resuming is being ready, so meter from here.
  if (w.s.closedSessions.includes(msg.sessionId)) return;
  const pauses = early(w, msg.sessionId);
  open(w, msg.sessionId, start, (r) => withResume(pauses(r), start));
}

/** Remembers a session as closed: an open for it arriving later (a re-injection) is refused. */
function remember(w: Work, sessionId: string): void {
  if (w.s.closedSessions.includes(sessionId)) return;
  w.s.closedSessions = [...w.s.closedSessions, sessionId].slice(-LIMITS.closedSessions);
}

export function onMeterClose(w: Work, msg: MessageOf<typeof BillingMeterClose>): void {
  const m = w.s.meters[msg.sessionId];
  if (m === undefined) {
    // Its open may still come (lost and re-injected, or late): it must not then run for ever.
    remember(w, msg.sessionId);
    return;
  }
  const closed = settle(w, metered(m, withClose(reportsOf(m), msg.at)), new Date(msg.at));
  delete w.s.meters[msg.sessionId];
  // Kept a while: a pause or resume reported after the close settles against it.
  w.s.closedMeters = [...w.s.closedMeters, closed].slice(-LIMITS.closedMeters);
  remember(w, msg.sessionId);
  rearmSettle(w);
  replan(w);
  // The session actor says how long it ran; only billing knows what it cost.
  w.tell({
    text: `Charged ${rupees(closed.chargedPaise)} for this session. Balance: ${rupees(w.s.balancePaise)}.`,
  });
}

/** The settle timer: charge every running meter up to now, then plan the next one. */
export function onSettleTimer(w: Work): void {
  for (const m of running(w)) w.s.meters[m.sessionId] = settle(w, m, w.now);
  rearmSettle(w);
  replan(w);
}
