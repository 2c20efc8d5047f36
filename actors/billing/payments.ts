/**
 * Top-ups through Razorpay payment links, exactly once. A captured payment is credited when
 * it matches its top-up (amount and currency) and was never credited before — decided from
 * state (`creditedPayments`), whichever of payment_link.paid, payment.captured or a
 * reconciliation fetch reports it first, however often. Anything that does not match is
 * held for an operator: recorded, never credited, never announced as a success.
 *
 * A top-up asked for again (a double press) while the link made for the same amount a moment
 * ago is still open gets that link, not a second one a player could pay as well.
 */
import { createHash } from 'node:crypto';
import {
  ErrorCodes,
  RazorpayCreateLink,
  RazorpayFetchLink,
  TerminalError,
  outRazorpaySubject,
  type BillingLinkStatus,
  type BillingPaymentEvent,
  type BillingPaymentLinkCreated,
  type BillingPaymentLinkFailed,
  type BillingTopup,
  type MessageOf,
  rupees,
} from '../../contracts/index.ts';
import { emit } from '../runtime/index.ts';
import { availablePaise, replan } from './credit.ts';
import { minutesText } from './format.ts';
import { applyEarlyRefunds, refund } from './refunds.ts';
import { LIMITS, type Topup } from './state.ts';
import type { Work } from './work.ts';

export const reconcileTimer = (topupId: string): string => `reconcile-${topupId}`;
export const RECONCILE_PREFIX = 'reconcile-';

/**
 * How long a top-up's link answers a new request for the same amount. Well inside the link's
 * validity (`linkTtlMs` is at least 16 minutes), so a reused link is never about to expire.
 */
export const REUSE_LINK_MS = 5 * 60_000;

/** Razorpay's reference_id for a top-up: unique per account, at most 40 characters. */
export function referenceIdFor(playerId: string, topupId: string): string {
  return `rsp_${createHash('sha256').update(`${playerId}:${topupId}`).digest('hex').slice(0, 32)}`;
}

function finished(t: Topup): boolean {
  return t.status === 'paid' || t.status === 'failed' || t.status === 'expired';
}

/** Keeps every open top-up and the most recent finished ones. */
function pruneTopups(w: Work): void {
  const done = Object.values(w.s.topups)
    .filter(finished)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  for (const t of done.slice(0, Math.max(0, done.length - LIMITS.finishedTopups))) {
    delete w.s.topups[t.id];
  }
}

export function onTopup(w: Work, msg: MessageOf<typeof BillingTopup>): void {
  w.s.chatId = msg.chatId;
  const existing = w.s.topups[msg.requestId];
  if (existing !== undefined) {
    if (existing.status === 'pending' && existing.shortUrl !== undefined) sendLink(w, existing);
    return;
  }
  const { topupMinPaise: min, topupMaxPaise: max } = w.cfg;
  if (msg.amountPaise < min || msg.amountPaise > max) {
    w.tell(
      {
        text: `Top-ups go from ${rupees(min)} to ${rupees(max)}. Pick an amount:`,
        buttons: w.topupButtons(),
      },
      msg.chatId,
    );
    return;
  }
  // A payment recorded for this very request (see EarlyPayment) is credited to it, below.
  const open = w.s.early[msg.requestId] === undefined ? reusable(w, msg) : undefined;
  if (open !== undefined) {
    // Its link is on its way (`creating`) or shown again in its own message (`pending`).
    sendLink(w, open);
    return;
  }
  const topup: Topup = {
    id: msg.requestId,
    referenceId: referenceIdFor(w.player, msg.requestId),
    amountPaise: msg.amountPaise,
    currency: w.cfg.currency,
    chatId: msg.chatId,
    createdAt: w.now.toISOString(),
    status: 'creating',
  };
  w.s.topups[topup.id] = topup;
  const early = w.s.early[topup.id];
  if (early !== undefined) {
    // Paid before billing saw the request (a replay that delivered the payment first).
    delete w.s.early[topup.id];
    if (early.amountPaise === topup.amountPaise && early.currency === topup.currency) {
      credit(w, { topupId: topup.id, ...early });
      w.resolveHold(early.holdKey, 'credited when its top-up request arrived');
      return;
    }
    // A different amount: the hold stays for an operator; this top-up goes on as usual.
  }
  w.send(
    emit(RazorpayCreateLink, outRazorpaySubject(), {
      playerId: w.player,
      topupId: topup.id,
      referenceId: topup.referenceId,
      amountPaise: topup.amountPaise,
      currency: topup.currency,
      description: `Respawn wallet top-up ${rupees(topup.amountPaise)}`,
      expireBy: new Date(w.now.getTime() + w.cfg.linkTtlMs).toISOString(),
    }),
  );
  w.arm(reconcileTimer(topup.id), new Date(w.now.getTime() + w.cfg.reconcileAfterMs));
}

/** The latest top-up of this amount, for this chat, still unpaid and made a moment ago. */
function reusable(w: Work, msg: MessageOf<typeof BillingTopup>): Topup | undefined {
  const since = w.now.getTime() - REUSE_LINK_MS;
  return Object.values(w.s.topups)
    .filter(
      (t) =>
        (t.status === 'creating' || t.status === 'pending') &&
        t.amountPaise === msg.amountPaise &&
        t.currency === w.cfg.currency &&
        t.chatId === msg.chatId &&
        new Date(t.createdAt).getTime() > since,
    )
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
}

/** One chat message per top-up, edited as it progresses (Telegram's key: at most 64). */
function editKey(t: Topup): string {
  return `topup:${t.id.length <= 58 ? t.id : t.referenceId}`;
}

function sendLink(w: Work, t: Topup): void {
  if (t.shortUrl === undefined) return;
  w.tell(
    {
      text: `Pay ${rupees(t.amountPaise)} to top up your Respawn wallet. The link is valid for ${minutesText(
        Math.floor(w.cfg.linkTtlMs / 60_000),
      )}.`,
      url: t.shortUrl,
      editKey: editKey(t),
    },
    t.chatId,
  );
}

function topupOrReject(w: Work, topupId: string, what: string): Topup {
  const t = w.s.topups[topupId];
  if (t === undefined) {
    throw new TerminalError(
      ErrorCodes.rejected,
      `${what} for top-up ${topupId}, which billing does not know`,
    );
  }
  return t;
}

export function onLinkCreated(w: Work, msg: MessageOf<typeof BillingPaymentLinkCreated>): void {
  const t = topupOrReject(w, msg.topupId, 'payment link created');
  if (t.status !== 'creating') return;
  if (
    msg.referenceId !== t.referenceId ||
    msg.amountPaise !== t.amountPaise ||
    msg.currency !== t.currency
  ) {
    throw new TerminalError(
      ErrorCodes.rejected,
      `payment link ${msg.linkId} does not match top-up ${t.id} (reference, amount or currency)`,
    );
  }
  t.status = 'pending';
  t.linkId = msg.linkId;
  t.shortUrl = msg.shortUrl;
  sendLink(w, t);
}

export function onLinkFailed(w: Work, msg: MessageOf<typeof BillingPaymentLinkFailed>): void {
  const t = topupOrReject(w, msg.topupId, 'payment link failure');
  if (t.status !== 'creating') return;
  t.status = 'failed';
  w.disarm(reconcileTimer(t.id));
  w.tell(
    { text: 'Sorry, the payment link could not be created. Please try again in a moment.' },
    t.chatId,
  );
  pruneTopups(w);
}

interface Captured {
  topupId: string;
  paymentId: string;
  amountPaise: number;
  currency: string;
}

/**
 * A payment held for an operator: the player paid and must not hear nothing (they might pay
 * again). Said once, when the hold is made; no amount is promised.
 */
function tellHeld(w: Work, p: Captured, chatId?: string): void {
  const amount =
    p.currency === w.cfg.currency
      ? rupees(p.amountPaise)
      : `${(p.amountPaise / 100).toFixed(2)} ${p.currency}`;
  w.tell(
    {
      text: `We received your payment of ${amount} (${p.paymentId}). It needs a check by our team before it reaches your wallet, so please do not pay again; we will sort it out.`,
    },
    chatId,
  );
}

/** Credits a captured payment once, or holds it for an operator. */
function credit(w: Work, p: Captured): void {
  if (w.s.creditedPayments.includes(p.paymentId)) return;
  const t = w.s.topups[p.topupId];
  const base = {
    topupId: p.topupId,
    paymentId: p.paymentId,
    amountPaise: p.amountPaise,
    currency: p.currency,
  };
  if (t === undefined) {
    if (w.hold({ id: p.paymentId, reason: 'unknown_topup', ...base })) tellHeld(w, p);
    // Kept (a few) so the top-up, when it comes, is credited by it: see EarlyPayment.
    if (
      w.s.early[p.topupId] === undefined &&
      Object.keys(w.s.early).length < LIMITS.earlyPayments
    ) {
      w.s.early[p.topupId] = {
        paymentId: p.paymentId,
        amountPaise: p.amountPaise,
        currency: p.currency,
        holdKey: `hold:${p.paymentId}:unknown_topup`,
      };
    }
    return;
  }
  if (t.paymentId !== undefined && t.paymentId !== p.paymentId) {
    if (w.hold({ id: p.paymentId, reason: 'second_payment', ...base })) tellHeld(w, p, t.chatId);
    return;
  }
  if (p.amountPaise !== t.amountPaise || p.currency !== t.currency) {
    const held = w.hold({
      id: p.paymentId,
      reason: 'amount_mismatch',
      ...base,
      expectedAmountPaise: t.amountPaise,
      expectedCurrency: t.currency,
    });
    if (held) tellHeld(w, p, t.chatId);
    return;
  }
  w.s.creditedPayments.push(p.paymentId);
  t.status = 'paid';
  t.paymentId = p.paymentId;
  w.post({
    key: `topup:${p.paymentId}`,
    amountPaise: p.amountPaise,
    reason: 'topup',
    topupId: t.id,
    paymentId: p.paymentId,
    label: 'Top-up',
  });
  w.disarm(reconcileTimer(t.id));
  // The link message stops inviting a payment (an edit, so silent: there was one)…
  if (t.shortUrl !== undefined) {
    w.tell(
      {
        text: `Paid: ${rupees(t.amountPaise)} top-up of your Respawn wallet.`,
        editKey: editKey(t),
      },
      t.chatId,
    );
  }
  // … and the news that the money arrived is a new message, with a notification.
  w.tell(
    { text: `✅ ${rupees(p.amountPaise)} added. Balance: ${rupees(availablePaise(w.s, w.now))}.` },
    t.chatId,
  );
  // A refund that came before this credit (Razorpay's retries arrive in any order) applies now.
  applyEarlyRefunds(w, p.paymentId);
  pruneTopups(w);
  replan(w);
}

export function onPaymentEvent(w: Work, msg: MessageOf<typeof BillingPaymentEvent>): void {
  switch (msg.event) {
    case 'payment_link.paid':
    case 'payment.captured':
      credit(w, msg);
      return;
    case 'payment.failed': {
      if (
        w.s.failedPayments.includes(msg.paymentId) ||
        w.s.creditedPayments.includes(msg.paymentId)
      ) {
        return;
      }
      w.s.failedPayments = [...w.s.failedPayments, msg.paymentId].slice(-LIMITS.failedPayments);
      const t = w.s.topups[msg.topupId];
      if (t?.status === 'pending') {
        // The top-up's own message, with its link: a later success edits it into "Paid", so
        // the chat never keeps "did not go through" above the credit's own message.
        w.tell(
          {
            text: `That payment of ${rupees(t.amountPaise)} did not go through. You can try again with the same link.`,
            ...(t.shortUrl === undefined ? {} : { url: t.shortUrl }),
            editKey: editKey(t),
          },
          t.chatId,
        );
      }
      return;
    }
    case 'refund.processed':
      if (msg.refundId === undefined) {
        throw new TerminalError(ErrorCodes.invalidPayload, 'refund.processed without a refundId');
      }
      refund(w, {
        topupId: msg.topupId,
        paymentId: msg.paymentId,
        refundId: msg.refundId,
        amountPaise: msg.amountPaise,
        currency: msg.currency,
      });
  }
}

/** Reconciliation's answer: credit what Razorpay captured, settle the top-up's fate. */
export function onLinkStatus(w: Work, msg: MessageOf<typeof BillingLinkStatus>): void {
  for (const p of msg.payments) {
    if (p.status !== 'captured') continue;
    credit(w, {
      topupId: msg.topupId,
      paymentId: p.paymentId,
      amountPaise: p.amountPaise,
      currency: msg.currency,
    });
  }
  const t = w.s.topups[msg.topupId];
  if (t === undefined || t.status !== 'pending') return;
  if (msg.status === 'expired' || msg.status === 'cancelled' || pastDeadline(w, t)) {
    expire(w, t);
  }
}

function pastDeadline(w: Work, t: Topup): boolean {
  return (
    w.now.getTime() > new Date(t.createdAt).getTime() + w.cfg.linkTtlMs + w.cfg.reconcileEveryMs
  );
}

function expire(w: Work, t: Topup): void {
  t.status = 'expired';
  w.disarm(reconcileTimer(t.id));
  pruneTopups(w);
}

/**
 * A top-up still open: ask Razorpay (the answer comes back as `link_status`) and look again
 * later, until well past the link's expiry.
 */
export function onReconcileTimer(w: Work, topupId: string): void {
  const t = w.s.topups[topupId];
  if (t === undefined || finished(t)) return;
  if (t.status === 'creating') {
    if (pastDeadline(w, t)) {
      t.status = 'failed';
      pruneTopups(w);
      return;
    }
  } else if (t.linkId !== undefined) {
    w.send(
      emit(RazorpayFetchLink, outRazorpaySubject(), {
        playerId: w.player,
        topupId: t.id,
        linkId: t.linkId,
      }),
    );
    // One last look after the deadline; its answer can still credit an expired top-up.
    if (pastDeadline(w, t)) {
      expire(w, t);
      return;
    }
  }
  w.arm(reconcileTimer(t.id), new Date(w.now.getTime() + w.cfg.reconcileEveryMs));
}
