/**
 * The billing actor: one per player (key = player id), owning the wallet, the meters and the
 * top-ups. Its handler is pure: it reads time only from the context, and what it decides
 * leaves as emissions (Telegram sends, Razorpay effects, the session's admission and stop),
 * durable timers and ledger records written in the same transaction as its state.
 */
import {
  ActorKinds,
  BillingAdjust,
  BillingAdmit,
  BillingBalance,
  BillingEvents,
  BillingHistory,
  BillingLinkStatus,
  BillingRegister,
  BillingRegistered,
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  BillingPaymentEvent,
  BillingPaymentLinkCreated,
  BillingPaymentLinkFailed,
  BillingTopup,
  SessionAdmission,
  TimerFired,
  cmdSubject,
  evtSubject,
  type MessageOf,
  rupees,
} from '../../contracts/index.ts';
import { defineActor, emit, type HandlerContext, type HandlerResult } from '../runtime/index.ts';
import { billingConfig, type BillingConfig } from './config.ts';
import { OUT_OF_CREDIT_TIMER, availablePaise, canStart, replan, requiredPaise } from './credit.ts';
import { historyText, minutesFor, minutesText, tierLabel } from './format.ts';
import { billingMigrations, persistBillingRecords } from './ledger.ts';
import {
  SETTLE_TIMER,
  onMeterClose,
  onMeterOpen,
  onMeterPause,
  onMeterResume,
  onSettleTimer,
} from './metering.ts';
import {
  RECONCILE_PREFIX,
  onLinkCreated,
  onLinkFailed,
  onLinkStatus,
  onPaymentEvent,
  onReconcileTimer,
  onTopup,
} from './payments.ts';
import { BillingState, initialBillingState } from './state.ts';
import { Work } from './work.ts';

const messages = [
  BillingAdmit,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  BillingMeterClose,
  BillingTopup,
  BillingPaymentLinkCreated,
  BillingPaymentLinkFailed,
  BillingPaymentEvent,
  BillingLinkStatus,
  BillingAdjust,
  BillingBalance,
  BillingHistory,
  BillingRegister,
] as const;

type BillingMessage = MessageOf<(typeof messages)[number]> | MessageOf<typeof TimerFired>;

function onAdmit(w: Work, msg: MessageOf<typeof BillingAdmit>): void {
  if (msg.chatId !== undefined) w.s.chatId = msg.chatId;
  w.s.startPricePerHourPaise = msg.cheapestPricePerHourPaise;
  const required = requiredPaise(w.cfg.minMinutes, msg.cheapestPricePerHourPaise);
  const balance = availablePaise(w.s, w.now);
  w.send(
    emit(SessionAdmission, cmdSubject(ActorKinds.session, w.player, 'admission'), {
      sessionId: msg.sessionId,
      allowed: canStart(balance, required),
      balancePaise: balance,
      requiredPaise: required,
    }),
  );
}

/** /start: the chat is remembered; the first one opens the account (announced to operators). */
function onRegister(w: Work, msg: MessageOf<typeof BillingRegister>): void {
  w.s.chatId = msg.chatId;
  if (w.s.registeredAt !== undefined) return;
  w.s.registeredAt = w.now.toISOString();
  w.emitted.push(
    emit(BillingRegistered, evtSubject(ActorKinds.billing, w.player, BillingEvents.registered), {
      playerId: w.player,
      at: w.s.registeredAt,
    }),
  );
}

function onBalance(w: Work, msg: MessageOf<typeof BillingBalance>): void {
  w.s.chatId = msg.chatId;
  const available = availablePaise(w.s, w.now);
  const { spot, on_demand: onDemand } = w.cfg.displayPricesPerHourPaise;
  const playing = Object.keys(w.s.meters).length > 0;
  const required = requiredPaise(
    w.cfg.minMinutes,
    w.s.startPricePerHourPaise ?? Math.min(spot, onDemand),
  );
  const startable = canStart(available, required);
  // Admission's minimum, as a refused Play states it (at least a paisa, never "₹0.00").
  const needs = rupees(Math.max(1, required));
  const lines = [
    `Balance: ${rupees(available)}${playing ? ' (including the session running now)' : ''}.`,
  ];
  if (!playing && !startable) {
    // What the balance would buy is beside the point: Play would be refused.
    lines.push(`Starting needs at least ${needs}. Top up to play.`);
  } else if (playing) {
    // What is left at the price being paid now (a session on On-Demand burns 3× Spot's rate).
    const meters = Object.values(w.s.meters);
    const running = meters.filter((m) => m.runningSince !== null);
    const burning = (running.length > 0 ? running : meters).reduce(
      (sum, m) => sum + m.pricePerHourPaise,
      0,
    );
    const tiers = [...new Set(meters.map((m) => tierLabel(m.tier)))];
    const minutes = minutesFor(available, burning);
    lines.push(
      (minutes >= 1 ? `≈ ${minutesText(minutes)}` : 'Less than a minute') +
        ` of play left at your session's ${tiers.join(' + ')} price (${rupees(burning)}/h).`,
    );
    if (!startable) {
      lines.push(`Starting another session needs at least ${needs}. Top up to keep playing.`);
    }
  } else {
    const minutes = minutesFor(available, spot);
    if (minutes >= 1) {
      lines.push(
        `≈ ${minutesText(minutes)} on Spot (${rupees(spot)}/h) or ` +
          `${minutesText(minutesFor(available, onDemand))} on On-Demand (${rupees(onDemand)}/h).`,
      );
    } else {
      lines.push(`Less than a minute of play left (Spot ${rupees(spot)}/h).`);
    }
    if (!startable) {
      lines.push(`Starting another session needs at least ${needs}. Top up to keep playing.`);
    }
  }
  w.tell({ text: lines.join('\n'), buttons: w.topupButtons(), collapseKey: 'balance' });
}

/** An operator's credit or debit, once per adjustment id. */
export function onAdjust(w: Work, msg: MessageOf<typeof BillingAdjust>): void {
  if (w.s.adjustments.includes(msg.adjustmentId)) return;
  w.s.adjustments.push(msg.adjustmentId);
  w.post({
    key: `adjustment:${w.player}:${msg.adjustmentId}`,
    amountPaise: msg.amountPaise,
    reason: 'adjustment',
    note: msg.note,
    label: `Adjustment: ${msg.note}`,
  });
  w.tell({
    text: `Your balance was adjusted by ${rupees(msg.amountPaise)} (${msg.note}). Balance: ${rupees(availablePaise(w.s, w.now))}.`,
  });
  replan(w);
}

function onHistory(w: Work, msg: MessageOf<typeof BillingHistory>): void {
  w.s.chatId = msg.chatId;
  w.tell({ text: historyText(w.s.history, msg.limit, w.cfg.timeZone), collapseKey: 'history' });
}

function onTimer(w: Work, msg: MessageOf<typeof TimerFired>): void {
  w.fired(msg.name);
  if (msg.name === SETTLE_TIMER) onSettleTimer(w);
  else if (msg.name.startsWith(RECONCILE_PREFIX)) {
    onReconcileTimer(w, msg.name.slice(RECONCILE_PREFIX.length));
  }
  // A warning point or the end of credit: replanning at the current time sends what is due.
  else if (msg.name === OUT_OF_CREDIT_TIMER || msg.name.startsWith('warn-')) replan(w);
}

export function handleBilling(
  cfg: BillingConfig,
  state: BillingState,
  msg: BillingMessage,
  ctx: HandlerContext,
): HandlerResult<BillingState> {
  const w = new Work(state, ctx, cfg);
  switch (msg.type) {
    case BillingAdmit.type:
      onAdmit(w, msg);
      break;
    case BillingMeterOpen.type:
      onMeterOpen(w, msg);
      break;
    case BillingMeterPause.type:
      onMeterPause(w, msg);
      break;
    case BillingMeterResume.type:
      onMeterResume(w, msg);
      break;
    case BillingMeterClose.type:
      onMeterClose(w, msg);
      break;
    case BillingTopup.type:
      onTopup(w, msg);
      break;
    case BillingPaymentLinkCreated.type:
      onLinkCreated(w, msg);
      break;
    case BillingPaymentLinkFailed.type:
      onLinkFailed(w, msg);
      break;
    case BillingPaymentEvent.type:
      onPaymentEvent(w, msg);
      break;
    case BillingLinkStatus.type:
      onLinkStatus(w, msg);
      break;
    case BillingAdjust.type:
      onAdjust(w, msg);
      break;
    case BillingRegister.type:
      onRegister(w, msg);
      break;
    case BillingBalance.type:
      onBalance(w, msg);
      break;
    case BillingHistory.type:
      onHistory(w, msg);
      break;
    case TimerFired.type:
      onTimer(w, msg);
      break;
  }
  return w.result();
}

/** The billing actor with this configuration (validated here, so a bad one fails at start). */
export function createBillingActor(config: Partial<BillingConfig> = {}) {
  const cfg = billingConfig(config);
  return defineActor({
    kind: ActorKinds.billing,
    state: BillingState,
    initial: initialBillingState,
    messages,
    handle: (state, msg, ctx) => handleBilling(cfg, state, msg, ctx),
    persist: persistBillingRecords,
    migrations: billingMigrations,
  });
}

export type BillingActor = ReturnType<typeof createBillingActor>;

/** Built from the defaults, for the worker's table of actor kinds. */
export const billingActor: BillingActor = createBillingActor();
