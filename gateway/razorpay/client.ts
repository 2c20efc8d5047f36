/**
 * The real `razorpay` SDK behind a small port (`Payments`). Its host is hard-coded, so the
 * factory points its axios instance at `baseUrl` (production: https://api.razorpay.com;
 * tests and the sandbox: the fake). The SDK turns a connection failure or timeout into a
 * TypeError from its own error handling; every failure leaves here as a RazorpayApiError that
 * says whether retrying can help. Responses are validated, never trusted as typed.
 */
import Razorpay from 'razorpay';
import { z } from 'zod';

export interface CreateLinkInput {
  amountPaise: number;
  currency: string;
  referenceId: string;
  description: string;
  expireBy: Date;
  notes: Record<string, string>;
}

export interface LinkPayment {
  paymentId: string;
  amountPaise: number;
  status: string;
}

export interface PaymentLink {
  id: string;
  shortUrl: string;
  status: 'created' | 'partially_paid' | 'expired' | 'cancelled' | 'paid';
  amountPaise: number;
  amountPaidPaise: number;
  currency: string;
  referenceId: string | undefined;
  payments: LinkPayment[];
}

/** What Respawn asks of Razorpay. */
export interface Payments {
  createLink(input: CreateLinkInput): Promise<PaymentLink>;
  fetchLink(linkId: string): Promise<PaymentLink>;
  /** The link created with this reference id, if any (a retried create finds its first). */
  findLinkByReference(referenceId: string): Promise<PaymentLink | undefined>;
}

export class RazorpayApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly statusCode: number | undefined,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RazorpayApiError';
  }
}

export interface RazorpayClientOptions {
  keyId: string;
  keySecret: string;
  /** Defaults to Razorpay's own API. */
  baseUrl?: string;
  timeoutMs?: number;
}

const LinkResponse = z.object({
  id: z.string().regex(/^plink_[A-Za-z0-9]{1,40}$/),
  short_url: z.url(),
  status: z.enum(['created', 'partially_paid', 'expired', 'cancelled', 'paid']),
  amount: z.coerce.number().int().nonnegative(),
  amount_paid: z.coerce.number().int().nonnegative().default(0),
  currency: z.string().regex(/^[A-Z]{3}$/),
  reference_id: z.string().nullable().optional(),
  payments: z
    .array(
      z.object({
        payment_id: z.string().regex(/^pay_[A-Za-z0-9]{1,40}$/),
        amount: z.coerce.number().int().nonnegative(),
        status: z.string().min(1).max(32),
      }),
    )
    .nullable()
    .optional(),
});

const LinkList = z.object({ payment_links: z.array(z.unknown()) });

const ErrorShape = z.object({
  statusCode: z.union([z.number(), z.string()]),
  error: z.object({ code: z.string().optional(), description: z.string().optional() }).optional(),
});

function toLink(raw: unknown): PaymentLink {
  const r = LinkResponse.safeParse(raw);
  if (!r.success) {
    throw new RazorpayApiError(
      `unexpected payment link from Razorpay: ${r.error.issues[0]?.message ?? 'invalid'}`,
      'INVALID_RESPONSE',
      undefined,
      false,
    );
  }
  const l = r.data;
  return {
    id: l.id,
    shortUrl: l.short_url,
    status: l.status,
    amountPaise: l.amount,
    amountPaidPaise: l.amount_paid,
    currency: l.currency,
    referenceId: l.reference_id ?? undefined,
    payments: (l.payments ?? []).map((p) => ({
      paymentId: p.payment_id,
      amountPaise: p.amount,
      status: p.status,
    })),
  };
}

/** Every rejection of the SDK, as one error class. Never carries the request (it has the key). */
export function normalizeRazorpayError(err: unknown): RazorpayApiError {
  if (err instanceof RazorpayApiError) return err;
  const shaped = ErrorShape.safeParse(err);
  if (shaped.success) {
    const status = Number(shaped.data.statusCode);
    const code = shaped.data.error?.code ?? `HTTP_${status}`;
    const description = shaped.data.error?.description ?? 'no description';
    const retryable = !(status >= 400 && status < 500) || status === 429;
    return new RazorpayApiError(
      `Razorpay ${status} ${code}: ${description}`,
      code,
      status,
      retryable,
    );
  }
  if (err instanceof TypeError) {
    // razorpay 2.9.8 reads err.response.status on a request that got no response.
    return new RazorpayApiError(
      'Razorpay unreachable (connection failed or timed out)',
      'UNAVAILABLE',
      undefined,
      true,
      { cause: err },
    );
  }
  return new RazorpayApiError(
    `Razorpay call failed: ${err instanceof Error ? err.message : String(err)}`,
    'UNKNOWN',
    undefined,
    true,
    { cause: err },
  );
}

interface AxiosDefaults {
  defaults: { baseURL?: string; timeout?: number };
}

/** The SDK's axios instance (`api.rq`); fails loudly if a new SDK version moved it. */
function axiosOf(api: unknown): AxiosDefaults {
  const rq: unknown = typeof api === 'object' && api !== null && 'rq' in api ? api.rq : undefined;
  // An axios instance is a function with properties.
  const defaults: unknown =
    (typeof rq === 'function' || (typeof rq === 'object' && rq !== null)) && 'defaults' in rq
      ? rq.defaults
      : undefined;
  if (typeof defaults !== 'object' || defaults === null) {
    throw new Error('razorpay SDK: api.rq.defaults not found; cannot point it at a base URL');
  }
  return rq as AxiosDefaults;
}

export function createRazorpayClient(opts: RazorpayClientOptions): Payments {
  const sdk = new Razorpay({ key_id: opts.keyId, key_secret: opts.keySecret });
  const http = axiosOf(sdk.api);
  if (opts.baseUrl !== undefined) http.defaults.baseURL = opts.baseUrl.replace(/\/+$/, '');
  http.defaults.timeout = opts.timeoutMs ?? 10_000;

  async function call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw normalizeRazorpayError(err);
    }
  }

  return {
    async createLink(input) {
      const raw: unknown = await call(() =>
        sdk.paymentLink.create({
          amount: input.amountPaise,
          currency: input.currency,
          accept_partial: false,
          reference_id: input.referenceId,
          description: input.description,
          expire_by: Math.floor(input.expireBy.getTime() / 1000),
          notes: input.notes,
          customer: {},
          notify: { sms: false, email: false },
          reminder_enable: false,
        }),
      );
      return toLink(raw);
    },
    async fetchLink(linkId) {
      const raw: unknown = await call(() => sdk.paymentLink.fetch(linkId));
      return toLink(raw);
    },
    async findLinkByReference(referenceId) {
      const query = { reference_id: referenceId, count: 10, skip: 0 };
      const raw: unknown = await call(() => sdk.paymentLink.all(query));
      const list = LinkList.safeParse(raw);
      if (!list.success) {
        throw new RazorpayApiError(
          'unexpected payment link list',
          'INVALID_RESPONSE',
          undefined,
          false,
        );
      }
      const links = list.data.payment_links.map(toLink);
      return links.find((l) => l.referenceId === referenceId);
    },
  };
}
