/**
 * Refunds (`refund.processed`), once each: debited from the wallet when the payment they
 * refund was credited. A refund may arrive before that payment's credit: Razorpay retries
 * webhooks in any order, and a refund made in the dashboard while the webhook endpoint was
 * down comes back with the payment's own retries. Such a refund is held for an operator and
 * kept (a few, `LIMITS.earlyRefunds`); when the payment is credited, it is applied and its
 * hold resolved, so the player never keeps refunded money.
 */
import { rupees } from '../../contracts/index.ts';
import { availablePaise, replan } from './credit.ts';
import { LIMITS } from './state.ts';
import type { Work } from './work.ts';

export interface Refund {
  topupId: string;
  paymentId: string;
  refundId: string;
  amountPaise: number;
  currency: string;
}

export function refund(w: Work, r: Refund): void {
  if (w.s.refunds.includes(r.refundId)) return;
  const base = { id: r.refundId, ...r };
  if (!w.s.creditedPayments.includes(r.paymentId)) {
    w.hold({ ...base, reason: 'refund_unknown_payment' });
    const kept = w.s.earlyRefunds.some((e) => e.refundId === r.refundId);
    if (!kept && w.s.earlyRefunds.length < LIMITS.earlyRefunds) {
      w.s.earlyRefunds.push({ ...r, holdKey: `hold:${r.refundId}:refund_unknown_payment` });
    }
    return;
  }
  if (r.currency !== w.cfg.currency) {
    w.hold({ ...base, reason: 'amount_mismatch', expectedCurrency: w.cfg.currency });
    return;
  }
  w.s.refunds.push(r.refundId);
  if (r.amountPaise === 0) return;
  w.post({
    key: `refund:${r.refundId}`,
    amountPaise: -r.amountPaise,
    reason: 'refund',
    topupId: r.topupId,
    paymentId: r.paymentId,
    refundId: r.refundId,
    label: 'Refund',
  });
  w.tell({
    text: `${rupees(r.amountPaise)} was refunded to your payment method. Balance: ${rupees(availablePaise(w.s, w.now))}.`,
  });
  replan(w);
}

/** The payment was just credited: the refunds of it that came first are applied now. */
export function applyEarlyRefunds(w: Work, paymentId: string): void {
  const due = w.s.earlyRefunds.filter((e) => e.paymentId === paymentId);
  if (due.length === 0) return;
  w.s.earlyRefunds = w.s.earlyRefunds.filter((e) => e.paymentId !== paymentId);
  for (const { holdKey, ...r } of due) {
    refund(w, r);
    w.resolveHold(holdKey, 'applied when its payment was credited');
  }
}
