/**
 * The real `razorpay` SDK against the Razorpay fake: links are created, fetched and found by
 * reference id; every failure (auth, server errors, dropped connections, nothing listening)
 * comes out as a RazorpayApiError that says whether a retry can help; the fake's webhooks
 * verify with the SDK's own signature check.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Razorpay from 'razorpay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRazorpayFake, type RazorpayFake } from '../../deploy/fakes/razorpay/index.ts';
import { RazorpayApiError, createRazorpayClient, type Payments } from './client.ts';

const KEY = { keyId: 'rzp_test_Fake0000000001', keySecret: 'fake-secret-0001' };
const WEBHOOK_SECRET = 'whsec-fake';

let fake: RazorpayFake;
let client: Payments;
let hook: http.Server;
const received: { body: string; headers: http.IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  hook = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const port = (hook.address() as AddressInfo).port;
  fake = await startRazorpayFake({
    ...KEY,
    webhookSecret: WEBHOOK_SECRET,
    webhookUrl: `http://127.0.0.1:${port}/razorpay/webhook`,
  });
  client = createRazorpayClient({ ...KEY, baseUrl: fake.url, timeoutMs: 2_000 });
});

afterAll(async () => {
  await fake.stop();
  await new Promise<void>((r) => hook.close(() => r()));
});

const link = (referenceId: string) => ({
  amountPaise: 50_000,
  currency: 'INR',
  referenceId,
  description: 'Respawn wallet top-up',
  expireBy: new Date(Date.now() + 3_600_000),
  notes: { player_id: '42', topup_id: 'r1' },
});

async function failure(p: Promise<unknown>): Promise<RazorpayApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RazorpayApiError);
    return err as RazorpayApiError;
  }
  throw new Error('expected a RazorpayApiError');
}

describe('the razorpay SDK pointed at the fake', () => {
  it('creates a payment link, fetches it and finds it by reference id', async () => {
    const created = await client.createLink(link('ref-create'));
    expect(created).toMatchObject({
      status: 'created',
      amountPaise: 50_000,
      amountPaidPaise: 0,
      currency: 'INR',
      referenceId: 'ref-create',
      payments: [],
    });
    expect(created.id).toMatch(/^plink_/);
    expect(created.shortUrl).toBe(`${fake.url}/pay/${created.id}`);
    expect(fake.link(created.id)?.notes).toEqual({ player_id: '42', topup_id: 'r1' });
    expect((await client.fetchLink(created.id)).id).toBe(created.id);
    expect((await client.findLinkByReference('ref-create'))?.id).toBe(created.id);
    expect(await client.findLinkByReference('ref-none')).toBeUndefined();
  });

  it('reports a paid link with its captured payment', async () => {
    const created = await client.createLink(link('ref-paid'));
    const { paymentId } = await fake.pay(created.id, { deliver: false });
    const fetched = await client.fetchLink(created.id);
    expect(fetched.status).toBe('paid');
    expect(fetched.payments).toEqual([{ paymentId, amountPaise: 50_000, status: 'captured' }]);
  });

  it('refuses a second link with the same reference id (not retryable)', async () => {
    await client.createLink(link('ref-dup'));
    const e = await failure(client.createLink(link('ref-dup')));
    expect(e).toMatchObject({ statusCode: 400, code: 'BAD_REQUEST_ERROR', retryable: false });
  });

  it('says a wrong key is not worth retrying', async () => {
    const wrong = createRazorpayClient({ ...KEY, keySecret: 'nope-nope', baseUrl: fake.url });
    const e = await failure(wrong.createLink(link('ref-auth')));
    expect(e).toMatchObject({ statusCode: 401, retryable: false });
    expect(e.message).not.toContain('nope-nope');
  });

  it('says a server error is worth retrying', async () => {
    fake.failNextApi({ status: 503 });
    const e = await failure(client.createLink(link('ref-503')));
    expect(e).toMatchObject({ statusCode: 503, retryable: true });
  });

  it('turns the SDK’s TypeError on a dropped connection into a retryable error', async () => {
    fake.failNextApi({ drop: true });
    const e = await failure(client.fetchLink('plink_Anything'));
    expect(e).toMatchObject({ code: 'UNAVAILABLE', retryable: true, statusCode: undefined });
    expect(e.cause).toBeInstanceOf(TypeError);
  });

  it('turns nothing listening into a retryable error', async () => {
    const dead = createRazorpayClient({ ...KEY, baseUrl: 'http://127.0.0.1:9', timeoutMs: 1_000 });
    const e = await failure(dead.fetchLink('plink_Anything'));
    expect(e).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
  });
});

describe('the fake’s webhooks', () => {
  it('are signed like Razorpay’s: the SDK’s own check accepts them', async () => {
    const created = await client.createLink(link('ref-hook'));
    received.length = 0;
    const r = await fake.pay(created.id);
    expect(r.deliveries.map((d) => d.status)).toEqual([200, 200]);
    expect(
      received.map((x) => JSON.parse(x.body) as { event: string }).map((b) => b.event),
    ).toEqual(['payment.captured', 'payment_link.paid']);
    for (const x of received) {
      const sig = x.headers['x-razorpay-signature'];
      expect(typeof sig).toBe('string');
      expect(Razorpay.validateWebhookSignature(x.body, sig as string, WEBHOOK_SECRET)).toBe(true);
      expect(Razorpay.validateWebhookSignature(x.body, sig as string, 'other')).toBe(false);
      expect(x.headers['x-razorpay-event-id']).toMatch(/^[A-Za-z0-9]{14}$/);
    }
  });

  it('serves a checkout page whose Pay button pays the link', async () => {
    const created = await client.createLink(link('ref-page'));
    const page = await (await fetch(created.shortUrl)).text();
    expect(page).toContain(`action="/pay/${created.id}"`);
    expect(page).toContain('Pay ₹500.00');
    received.length = 0;
    await fetch(created.shortUrl, { method: 'POST' });
    expect((await client.fetchLink(created.id)).status).toBe('paid');
    expect(received).toHaveLength(2);
  });

  it('has a Decline button that fails the payment and leaves the link open', async () => {
    const created = await client.createLink(link('ref-decline'));
    const page = await (await fetch(created.shortUrl)).text();
    expect(page).toContain(`action="/pay/${created.id}?outcome=decline"`);
    received.length = 0;
    const after = await (
      await fetch(`${created.shortUrl}?outcome=decline`, { method: 'POST' })
    ).text();
    expect(after).toContain('declined');
    expect(received.map((r) => (JSON.parse(r.body) as { event: string }).event)).toEqual([
      'payment.failed',
    ]);
    expect((await client.fetchLink(created.id)).status).toBe('created');
    // Then paying works.
    await fetch(created.shortUrl, { method: 'POST' });
    expect((await client.fetchLink(created.id)).status).toBe('paid');
  });
});
