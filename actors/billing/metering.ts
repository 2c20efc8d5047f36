/**
 * Meter messages from the session actor and the settlement timer. A meter opens when the VM
 * is ready, pauses at the eviction time (nothing is charged until it resumes), and closes at
 * the stop; each of these and every `settle` timer writes a settlement entry for what became
 * due, so a crash loses nothing and, with the idempotency keys, charges nothing twice.
 */
import type {
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  MessageOf,
} from '../../contracts/index.ts';
import { rupees } from '../../contracts/index.ts';
import { tierLabel } from './format.ts';
import { replan } from './credit.ts';
import { openMeter, pauseMeter, resumeMeter, settleMeter, usageKey } from './meter.ts';
import { LIMITS, type Meter } from './state.ts';
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

function known(w: Work, sessionId: string): boolean {
  return sessionId in w.s.meters || w.s.closedSessions.includes(sessionId);
}

export function onMeterOpen(w: Work, msg: MessageOf<typeof BillingMeterOpen>): void {
  if (msg.chatId !== undefined) w.s.chatId = msg.chatId;
  if (known(w, msg.sessionId)) return;
  w.s.meters[msg.sessionId] = openMeter(msg.sessionId, msg.tier, msg.pricePerHourPaise, msg.at);
  rearmSettle(w);
  replan(w);
}

export function onMeterPause(w: Work, msg: MessageOf<typeof BillingMeterPause>): void {
  const m = w.s.meters[msg.sessionId];
  if (m === undefined || m.runningSince === null) return;
  const paused = pauseMeter(m, new Date(msg.at));
  w.s.meters[msg.sessionId] = settle(w, paused, new Date(msg.at));
  rearmSettle(w);
  replan(w);
}

export function onMeterResume(w: Work, msg: MessageOf<typeof BillingMeterResume>): void {
  const m = w.s.meters[msg.sessionId];
  if (m === undefined) {
    // The open was lost or never sent: resuming is being ready, so meter from here.
    if (w.s.closedSessions.includes(msg.sessionId)) return;
    w.s.meters[msg.sessionId] = openMeter(msg.sessionId, msg.tier, msg.pricePerHourPaise, msg.at);
  } else {
    if (m.runningSince !== null) return;
    w.s.meters[msg.sessionId] = resumeMeter(m, new Date(msg.at), msg.tier, msg.pricePerHourPaise);
  }
  rearmSettle(w);
  replan(w);
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
  const at = new Date(msg.at);
  const closed = settle(w, pauseMeter(m, at), at);
  delete w.s.meters[msg.sessionId];
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
