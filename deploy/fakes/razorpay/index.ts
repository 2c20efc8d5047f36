/**
 * A Razorpay-compatible fake for tests and for running without credentials. The real
 * `razorpay` SDK is pointed at it (its axios base URL). It speaks the payment links API with
 * Basic auth (create, fetch, list by reference_id), serves a checkout page `GET /pay/<id>`
 * whose Pay button POSTs back and fires the signed webhooks (`X-Razorpay-Signature`: HMAC-
 * SHA256 hex of the raw body with the webhook secret; `x-razorpay-event-id`), and has test
 * controls: pay with another amount or currency, fail a payment, deliver events in any order
 * or not at all, replay them (same bytes, same or fresh event id), refund, expire a link, and
 * fail or drop the next API calls.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rupees } from '../../../contracts/index.ts';
import {
  apiError,
  eventBody,
  newId,
  newPayment,
  orderEntity,
  unix,
  validateCreate,
  type FakeEvent,
  type FakeLink,
  type FakePayment,
  type FakeRefund,
} from './model.ts';

export type { FakeEvent, FakeLink, FakePayment, FakeRefund };

export interface RazorpayFakeOptions {
  keyId: string;
  keySecret: string;
  webhookSecret: string;
  /** Where webhooks are POSTed; absent: events are only recorded (deliver them later). */
  webhookUrl?: string;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** The fake's notion of now (entity timestamps, link expiry). */
  now?: () => Date;
}

export interface Delivery {
  eventId: string;
  event: string;
  /** The receiver's HTTP status, or 0 when the request failed. */
  status: number;
}

export interface PayOptions {
  /** Pay another amount than the link's (a mismatch billing must hold). */
  amountPaise?: number;
  currency?: string;
  /** The payment fails: only `payment.failed` is sent and the link stays open. */
  fail?: boolean;
  /** Which order events go out in (default: captured first, as Razorpay usually does). */
  order?: 'captured-first' | 'paid-first';
  /** false: record the events without delivering them (a missed webhook). Default true. */
  deliver?: boolean;
}

export interface PayResult {
  paymentId: string;
  events: FakeEvent[];
  deliveries: Delivery[];
}

export interface RazorpayFake {
  readonly url: string;
  stop(): Promise<void>;
  setWebhookUrl(url: string | undefined): void;
  links(): FakeLink[];
  link(id: string): FakeLink | undefined;
  pay(linkId: string, opts?: PayOptions): Promise<PayResult>;
  refund(paymentId: string, amountPaise?: number, opts?: { deliver?: boolean }): Promise<PayResult>;
  /** Marks a link expired, as Razorpay does at `expire_by`. */
  expire(linkId: string): void;
  events(): FakeEvent[];
  /** Delivers a recorded event (again): same body and signature; a fresh id if asked. */
  deliver(eventId: string, opts?: { freshEventId?: boolean }): Promise<Delivery>;
  /** Posts any body, signed (or with the given signature), e.g. garbage for the DLQ. */
  sendRaw(body: string, opts?: { eventId?: string; signature?: string }): Promise<Delivery>;
  deliveries(): Delivery[];
  /** The next `times` API calls answer `status` (default 500), or drop the connection. */
  failNextApi(spec?: { status?: number; times?: number; drop?: boolean }): void;
  apiCalls(): { method: string; path: string; status: number }[];
}

export function signWebhook(body: string, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

interface ApiFailure {
  status: number;
  times: number;
  drop: boolean;
}

const json = (res: http.ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The checkout a player reaches from the payment link: Pay (the link is paid, its webhooks
 * fire) or Decline (a failed payment: `payment.failed` fires and the link stays open, as when
 * a card is refused), so a person in the sandbox can try both.
 */
function checkoutPage(link: FakeLink, declined: boolean): string {
  const open = link.status === 'created';
  return `<!doctype html><html><head><meta charset="utf-8"><title>Pay ${rupees(link.amount)}</title></head>
<body style="font-family:sans-serif;max-width:28rem;margin:3rem auto">
<h1>Razorpay (fake) checkout</h1>
<p>${escapeHtml(link.description)}</p>
<p style="font-size:2rem">${rupees(link.amount)}</p>
${declined && open ? '<p id="declined"><b>The payment was declined.</b> You can try again.</p>' : ''}
${
  open
    ? `<form method="post" action="/pay/${link.id}" style="display:inline"><button type="submit" style="font-size:1.2rem">Pay ${rupees(link.amount)}</button></form>
<form method="post" action="/pay/${link.id}?outcome=decline" style="display:inline"><button type="submit" style="font-size:1.2rem">Decline</button></form>`
    : `<p>This link is <b>${link.status}</b>.</p>`
}
</body></html>`;
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startRazorpayFake(opts: RazorpayFakeOptions): Promise<RazorpayFake> {
  const now = opts.now ?? (() => new Date());
  const links = new Map<string, FakeLink>();
  const payments = new Map<string, FakePayment>();
  const events = new Map<string, FakeEvent>();
  const deliveries: Delivery[] = [];
  const calls: { method: string; path: string; status: number }[] = [];
  let webhookUrl = opts.webhookUrl;
  let failure: ApiFailure | undefined;
  let base = '';

  const expected = `Basic ${Buffer.from(`${opts.keyId}:${opts.keySecret}`).toString('base64')}`;
  const authorized = (req: http.IncomingMessage): boolean => {
    const got = Buffer.from(req.headers.authorization ?? '');
    const want = Buffer.from(expected);
    return got.length === want.length && timingSafeEqual(got, want);
  };

  function record(event: string, payload: Record<string, unknown>): FakeEvent {
    const e = { eventId: newId(''), event, body: eventBody(event, payload, unix(now())) };
    events.set(e.eventId, e);
    return e;
  }

  async function post(body: string, eventId: string, event: string, signature?: string) {
    const d: Delivery = { eventId, event, status: 0 };
    if (webhookUrl !== undefined) {
      try {
        const res = await fetch(webhookUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-razorpay-signature': signature ?? signWebhook(body, opts.webhookSecret),
            'x-razorpay-event-id': eventId,
          },
          body,
        });
        await res.arrayBuffer();
        d.status = res.status;
      } catch {
        d.status = 0;
      }
    }
    deliveries.push(d);
    return d;
  }

  async function pay(linkId: string, o: PayOptions = {}): Promise<PayResult> {
    const link = links.get(linkId);
    if (link === undefined) throw new Error(`no payment link ${linkId}`);
    if (link.status !== 'created') throw new Error(`payment link ${linkId} is ${link.status}`);
    const t = unix(now());
    const payment = newPayment(link, {
      amount: o.amountPaise ?? link.amount,
      currency: o.currency ?? link.currency,
      failed: o.fail === true,
      now: t,
    });
    payments.set(payment.id, payment);
    const ref = {
      amount: payment.amount,
      created_at: t,
      method: payment.method,
      payment_id: payment.id,
      plink_id: link.id,
      status: payment.status,
      updated_at: t,
    };
    link.payments = [...(link.payments ?? []), ref];
    link.updated_at = t;
    let out: FakeEvent[];
    if (payment.status === 'failed') {
      out = [record('payment.failed', { payment: { entity: payment } })];
    } else {
      link.amount_paid += payment.amount;
      link.status = 'paid';
      const order = { entity: orderEntity(link, t) };
      const captured = record('payment.captured', { payment: { entity: payment }, order });
      const paid = record('payment_link.paid', {
        payment_link: { entity: { ...link } },
        order,
        payment: { entity: payment },
      });
      out = o.order === 'paid-first' ? [paid, captured] : [captured, paid];
    }
    const sent: Delivery[] = [];
    if (o.deliver !== false) for (const e of out) sent.push(await post(e.body, e.eventId, e.event));
    return { paymentId: payment.id, events: out, deliveries: sent };
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<number> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const page = /^\/pay\/(plink_[A-Za-z0-9]+)$/.exec(path);
    if (page !== null) {
      const link = links.get(page[1]!);
      if (link === undefined) return (res.writeHead(404).end('no such link'), 404);
      const decline = url.searchParams.get('outcome') === 'decline';
      const posted = req.method === 'POST' && link.status === 'created';
      if (posted) await pay(link.id, { fail: decline });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(checkoutPage(link, posted && decline));
      return 200;
    }
    if (!path.startsWith('/v1/'))
      return (json(res, 404, apiError('The requested URL was not found on the server.')), 404);
    if (!authorized(req)) {
      json(res, 401, apiError('Authentication failed'));
      return 401;
    }
    if (failure !== undefined && failure.times > 0) {
      failure.times--;
      if (failure.drop) {
        req.socket.destroy();
        return 0;
      }
      json(res, failure.status, {
        error: { code: 'SERVER_ERROR', description: 'The server encountered an error.' },
      });
      return failure.status;
    }
    if (req.method === 'POST' && path === '/v1/payment_links') {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req)) as unknown;
      } catch {
        body = undefined;
      }
      const refs = new Set([...links.values()].map((l) => l.reference_id).filter((r) => r !== ''));
      const v = validateCreate(body, unix(now()), refs);
      if (!v.ok) return (json(res, 400, v.error), 400);
      const id = newId('plink');
      const link: FakeLink = {
        ...v.value,
        id,
        short_url: `${base}/pay/${id}`,
        order_id: newId('order'),
      };
      links.set(id, link);
      json(res, 200, link);
      return 200;
    }
    const one = /^\/v1\/payment_links\/(plink_[A-Za-z0-9]+)$/.exec(path);
    if (req.method === 'GET' && one !== null) {
      const link = links.get(one[1]!);
      if (link === undefined)
        return (json(res, 400, apiError('The id provided does not exist')), 400);
      json(res, 200, link);
      return 200;
    }
    if (req.method === 'GET' && path === '/v1/payment_links') {
      const ref = url.searchParams.get('reference_id');
      const count = Number(url.searchParams.get('count') ?? '10');
      const skip = Number(url.searchParams.get('skip') ?? '0');
      const all = [...links.values()]
        .filter((l) => ref === null || l.reference_id === ref)
        .reverse();
      json(res, 200, { payment_links: all.slice(skip, skip + count) });
      return 200;
    }
    json(res, 400, apiError('The requested URL was not found on the server.'));
    return 400;
  }

  const server = http.createServer((req, res) => {
    route(req, res)
      .then((status) => calls.push({ method: req.method ?? '', path: req.url ?? '', status }))
      .catch((err: unknown) => {
        if (!res.headersSent)
          json(res, 500, { error: { code: 'SERVER_ERROR', description: String(err) } });
      });
  });
  await new Promise<void>((resolve) =>
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve),
  );
  const addr = server.address() as AddressInfo;
  base = `http://${addr.address}:${addr.port}`;

  return {
    url: base,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    setWebhookUrl(url) {
      webhookUrl = url;
    },
    links: () => [...links.values()],
    link: (id) => links.get(id),
    pay,
    async refund(paymentId, amountPaise, o = {}) {
      const payment = payments.get(paymentId);
      if (payment === undefined || payment.status !== 'captured') {
        throw new Error(`no captured payment ${paymentId}`);
      }
      const amount = amountPaise ?? payment.amount - payment.amount_refunded;
      payment.amount_refunded += amount;
      payment.refund_status = payment.amount_refunded >= payment.amount ? 'full' : 'partial';
      const refund: FakeRefund = {
        id: newId('rfnd'),
        entity: 'refund',
        amount,
        currency: payment.currency,
        payment_id: paymentId,
        notes: [],
        receipt: null,
        status: 'processed',
        speed_processed: 'normal',
        created_at: unix(now()),
      };
      const e = record('refund.processed', {
        refund: { entity: refund },
        payment: { entity: { ...payment } },
      });
      const sent = o.deliver === false ? [] : [await post(e.body, e.eventId, e.event)];
      return { paymentId, events: [e], deliveries: sent };
    },
    expire(linkId) {
      const link = links.get(linkId);
      if (link === undefined || link.status !== 'created') return;
      link.status = 'expired';
      link.expired_at = unix(now());
    },
    events: () => [...events.values()],
    async deliver(eventId, o = {}) {
      const e = events.get(eventId);
      if (e === undefined) throw new Error(`no event ${eventId}`);
      return post(e.body, o.freshEventId === true ? newId('') : e.eventId, e.event);
    },
    sendRaw: (body, o = {}) => post(body, o.eventId ?? newId(''), 'raw', o.signature),
    deliveries: () => [...deliveries],
    failNextApi(spec = {}) {
      failure = { status: spec.status ?? 500, times: spec.times ?? 1, drop: spec.drop === true };
    },
    apiCalls: () => [...calls],
  };
}
