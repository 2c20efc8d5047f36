/**
 * The Telegram and Razorpay webhooks under arbitrary bodies, authenticated as their senders
 * would (the secret token; a valid signature over whatever bytes), against a private
 * nats-server and real Redis. Whatever the body, the gateway answers with a documented status
 * (docs/gateway.md), never a 5xx while NATS is up, and JetStream holds a new message exactly
 * when the answer says one was stored.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Streams } from '../../contracts/index.ts';
import { razorpaySignature } from '../../gateway/index.ts';
import {
  RAZORPAY_SECRET,
  TELEGRAM_SECRET,
  request,
  startBus,
  startGateway,
  textUpdate,
  type Bus,
  type HttpAnswer,
  type RunningTestGateway,
} from './support.ts';
import { pathsOf, replaced } from '../support/property.ts';

let bus: Bus;
let gw: RunningTestGateway;

beforeAll(async () => {
  bus = await startBus();
  gw = await startGateway(bus);
});
afterAll(async () => {
  await gw.close();
  await bus.dispose();
});

const stored = async (): Promise<number> =>
  (await bus.jsm.streams.info(Streams.ingress.name)).state.messages;

const sample = textUpdate(1, 42, '/start');
const body = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v))),
  fc
    .tuple(
      fc.constantFrom(...pathsOf(sample)),
      fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.constantFrom(-1, 0, 2 ** 53, 1.5, '', 'x'.repeat(70_000)),
      ),
    )
    .map(([path, by]) => Buffer.from(JSON.stringify(replaced(sample, path, by)))),
);

const TELEGRAM = [200, 400, 413];
const RAZORPAY = [200, 400, 413];

/** The answer is documented, and a new message was stored exactly when it says it was. */
function expectHonest(a: HttpAnswer, allowed: number[], added: number): void {
  expect(allowed, `status ${a.status}: ${a.text.slice(0, 200)}`).toContain(a.status);
  const b = a.body as { ok?: boolean; duplicate?: boolean; dropped?: unknown };
  const saysStored = a.status === 200 && b.duplicate === false && b.dropped === undefined;
  expect(added, `stored ${added} for ${a.status} ${a.text.slice(0, 200)}`).toBe(saysStored ? 1 : 0);
}

describe('webhooks under arbitrary bodies', () => {
  it('Telegram: a documented status, and stored exactly when it says so', async () => {
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const before = await stored();
        const a = await request(gw.url, '/telegram/webhook', {
          body: b,
          headers: { 'x-telegram-bot-api-secret-token': TELEGRAM_SECRET },
        });
        expectHonest(a, TELEGRAM, (await stored()) - before);
      }),
      { numRuns: 150 },
    );
  });

  it('Razorpay: a documented status, and stored exactly when it says so', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const before = await stored();
        const a = await request(gw.url, '/razorpay/webhook', {
          body: b,
          headers: {
            'x-razorpay-signature': razorpaySignature(b, RAZORPAY_SECRET),
            'x-razorpay-event-id': `evt_prop${(n += 1)}`,
          },
        });
        expectHonest(a, RAZORPAY, (await stored()) - before);
      }),
      { numRuns: 150 },
    );
  });
});
