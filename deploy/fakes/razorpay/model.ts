/**
 * The fake's world: payment links, the payments made on them and refunds, and the webhook
 * events those produce, shaped like Razorpay's entities (snake_case, amounts in paise, Unix
 * seconds). Payments made through a link carry the link's notes (so do their orders); that is
 * what lets Respawn route `payment.captured` to a player.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Razorpay-style ids: a prefix and 14 alphanumerics. */
export function newId(prefix: string): string {
  const bytes = randomBytes(14);
  let s = '';
  for (const b of bytes) s += ALPHABET[b % ALPHABET.length];
  return prefix === '' ? s : `${prefix}_${s}`;
}

export type Notes = Record<string, string | number | null>;

export interface LinkPaymentRef {
  amount: number;
  created_at: number;
  method: string;
  payment_id: string;
  plink_id: string;
  status: 'captured' | 'failed';
  updated_at: number;
}

export interface FakeLink {
  id: string;
  amount: number;
  amount_paid: number;
  currency: string;
  accept_partial: boolean;
  reference_id: string;
  description: string;
  expire_by: number;
  expired_at: number;
  cancelled_at: number;
  created_at: number;
  updated_at: number;
  notes: Notes;
  order_id: string;
  payments: LinkPaymentRef[] | null;
  short_url: string;
  status: 'created' | 'partially_paid' | 'expired' | 'cancelled' | 'paid';
  customer: Record<string, string>;
  notify: Record<string, boolean>;
  reminder_enable: boolean;
  user_id: string;
  upi_link: boolean;
}

export interface FakePayment {
  id: string;
  entity: 'payment';
  amount: number;
  currency: string;
  status: 'captured' | 'failed';
  order_id: string;
  invoice_id: null;
  international: boolean;
  method: string;
  amount_refunded: number;
  refund_status: null | 'partial' | 'full';
  captured: boolean;
  description: string;
  vpa: string;
  email: string;
  contact: string;
  notes: Notes | [];
  fee: number;
  tax: number;
  error_code: string | null;
  error_description: string | null;
  created_at: number;
}

export interface FakeRefund {
  id: string;
  entity: 'refund';
  amount: number;
  currency: string;
  payment_id: string;
  notes: [];
  receipt: null;
  status: 'processed';
  speed_processed: 'normal';
  created_at: number;
}

/** One webhook event, kept byte for byte so a replay is the same delivery. */
export interface FakeEvent {
  eventId: string;
  event: string;
  body: string;
}

export const unix = (d: Date): number => Math.floor(d.getTime() / 1000);

export function orderEntity(link: FakeLink, now: number) {
  return {
    id: link.order_id,
    entity: 'order',
    amount: link.amount,
    amount_paid: link.amount_paid,
    amount_due: link.amount - link.amount_paid,
    currency: link.currency,
    receipt: link.reference_id,
    status: link.amount_paid >= link.amount ? 'paid' : 'attempted',
    attempts: 1,
    notes: link.notes,
    created_at: now,
  };
}

export function eventBody(event: string, payload: Record<string, unknown>, now: number): string {
  return JSON.stringify({
    entity: 'event',
    account_id: 'acc_FakeRespawn0001',
    event,
    contains: Object.keys(payload),
    payload,
    created_at: now,
  });
}

export function newPayment(
  link: FakeLink,
  opts: { amount: number; currency: string; failed: boolean; now: number },
): FakePayment {
  return {
    id: newId('pay'),
    entity: 'payment',
    amount: opts.amount,
    currency: opts.currency,
    status: opts.failed ? 'failed' : 'captured',
    order_id: link.order_id,
    invoice_id: null,
    international: false,
    method: 'upi',
    amount_refunded: 0,
    refund_status: null,
    captured: !opts.failed,
    description: `#${link.id.slice('plink_'.length)}`,
    vpa: 'player@upi',
    email: 'void@razorpay.com',
    contact: '+919000090000',
    notes: Object.keys(link.notes).length === 0 ? [] : link.notes,
    fee: opts.failed ? 0 : Math.round(opts.amount * 0.02),
    tax: opts.failed ? 0 : Math.round(opts.amount * 0.0036),
    error_code: opts.failed ? 'BAD_REQUEST_ERROR' : null,
    error_description: opts.failed ? 'Payment was declined by the bank' : null,
    created_at: opts.now,
  };
}

export function apiError(description: string, field?: string) {
  return {
    error: {
      code: 'BAD_REQUEST_ERROR',
      description,
      source: 'business',
      step: 'payment_initiation',
      reason: 'input_validation_failed',
      metadata: {},
      ...(field === undefined ? {} : { field }),
    },
  };
}

/** Validates a create request the way Razorpay does for what Respawn sends. */
export function validateCreate(
  body: unknown,
  nowS: number,
  existingRefs: ReadonlySet<string>,
):
  | { ok: true; value: Omit<FakeLink, 'id' | 'short_url' | 'order_id'> }
  | { ok: false; error: ReturnType<typeof apiError> } {
  if (typeof body !== 'object' || body === null)
    return { ok: false, error: apiError('The request body is not JSON') };
  const b = body as Record<string, unknown>;
  if (typeof b.amount !== 'number' || !Number.isInteger(b.amount) || b.amount < 100) {
    return { ok: false, error: apiError('The amount must be atleast INR 1.00', 'amount') };
  }
  const currency = b.currency ?? 'INR';
  if (currency !== 'INR')
    return { ok: false, error: apiError('Currency is not supported', 'currency') };
  const ref = b.reference_id;
  if (ref !== undefined && (typeof ref !== 'string' || ref.length > 40)) {
    return {
      ok: false,
      error: apiError('The reference id may not be greater than 40 characters.', 'reference_id'),
    };
  }
  if (typeof ref === 'string' && existingRefs.has(ref)) {
    return {
      ok: false,
      error: apiError(`Payment Link with reference_id ${ref} already exists`, 'reference_id'),
    };
  }
  const expireBy = b.expire_by ?? nowS + 180 * 86_400;
  if (typeof expireBy !== 'number' || expireBy < nowS + 15 * 60) {
    return {
      ok: false,
      error: apiError('expire_by should be at least 15 minutes after current time', 'expire_by'),
    };
  }
  const notes = b.notes ?? {};
  if (
    typeof notes !== 'object' ||
    notes === null ||
    Array.isArray(notes) ||
    Object.keys(notes).length > 15 ||
    Object.values(notes).some((v) => typeof v !== 'string' || v.length > 256)
  ) {
    return {
      ok: false,
      error: apiError('notes: at most 15 string values of 256 characters', 'notes'),
    };
  }
  return {
    ok: true,
    value: {
      amount: b.amount,
      amount_paid: 0,
      currency,
      accept_partial: b.accept_partial === true,
      reference_id: typeof ref === 'string' ? ref : '',
      description: typeof b.description === 'string' ? b.description : '',
      expire_by: expireBy,
      expired_at: 0,
      cancelled_at: 0,
      created_at: nowS,
      updated_at: nowS,
      notes: notes as Notes,
      payments: null,
      status: 'created',
      customer: {},
      notify: { sms: false, email: false },
      reminder_enable: false,
      user_id: '',
      upi_link: false,
    },
  };
}
