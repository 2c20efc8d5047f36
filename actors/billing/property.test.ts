/**
 * Property test: random interleavings of top-ups, duplicated and reordered payment events,
 * reconciliation answers, refunds, adjustments, sessions opening, being evicted, resuming
 * and closing (with late-reported eviction times), and time passing with its timers. After
 * every step the balance equals the sum of the ledger and no payment is credited twice; at
 * the end each session's usage equals its metered whole seconds × rate, rounded down.
 *
 * fast-check draws each interleaving's seed and length (and shrinks the length of a failing
 * one); the operations themselves come from a PRNG on that seed, so every counterexample is
 * reproducible from the seed fast-check prints.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BillingAdjust,
  BillingLinkStatus,
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  BillingPaymentEvent,
  BillingPaymentLinkCreated,
  BillingTopup,
  RazorpayCreateLink,
  type MessageOf,
} from '../../contracts/index.ts';
import { REUSE_LINK_MS, referenceIdFor } from './payments.ts';
import { BillingSim, MIN } from './testkit.ts';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Segment {
  start: number;
  end: number | undefined;
  price: number;
}

interface ModelSession {
  id: string;
  segments: Segment[];
  closed: boolean;
}

type PaymentEvent = Omit<MessageOf<typeof BillingPaymentEvent>, 'type'>;

function run(seed: number, steps: number): void {
  const rnd = mulberry32(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T | undefined => xs[int(xs.length)];
  const sim = new BillingSim({
    settleIntervalMs: MIN,
    minMinutes: 0,
    reconcileAfterMs: 20 * MIN,
    reconcileEveryMs: 20 * MIN,
    linkTtlMs: 60 * MIN,
  });
  const topups: { id: string; amount: number; linkId: string }[] = [];
  const events: PaymentEvent[] = [];
  const sessions: ModelSession[] = [];
  let n = 0;
  const now = (): number => sim.now.getTime();

  const closeSession = (): void => {
    const s = sessions.find((x) => !x.closed);
    if (s === undefined) return;
    const seg = s.segments.at(-1)!;
    if (seg.end === undefined) seg.end = now();
    s.closed = true;
    sim.send(BillingMeterClose, { sessionId: s.id, at: sim.now.toISOString(), reason: 'player' });
  };

  const ops: (() => void)[] = [
    () => {
      const id = `r${++n}`;
      const amount = (1 + int(20)) * 10_000;
      const linkId = `plink_L${n}`;
      const asked = sim.send(BillingTopup, { requestId: id, chatId: '42', amountPaise: amount });
      // A repeat of an amount whose link is still open gets that link: no link to create.
      if (!asked.some((e) => e.type === RazorpayCreateLink.type)) return;
      sim.send(BillingPaymentLinkCreated, {
        topupId: id,
        referenceId: referenceIdFor('42', id),
        linkId,
        shortUrl: `https://rzp.example/i/${n}`,
        amountPaise: amount,
        currency: 'INR',
      });
      topups.push({ id, amount, linkId });
    },
    () => {
      const t = pick(topups);
      if (t === undefined) return;
      const payment = `pay_P${t.id}x${int(2)}`;
      const wrong = int(8) === 0;
      const e: PaymentEvent = {
        event: pick(['payment_link.paid', 'payment.captured'] as const)!,
        topupId: t.id,
        paymentId: payment,
        amountPaise: wrong ? t.amount - 100 : t.amount,
        currency: 'INR',
      };
      events.push(e);
      sim.send(BillingPaymentEvent, e);
    },
    () => {
      const e = pick(events);
      if (e !== undefined) sim.send(BillingPaymentEvent, e);
    },
    () => {
      const t = pick(topups);
      if (t === undefined) return;
      const payment = `pay_P${t.id}x${int(2)}`;
      sim.send(BillingLinkStatus, {
        topupId: t.id,
        linkId: t.linkId,
        status: 'paid',
        amountPaidPaise: t.amount,
        currency: 'INR',
        payments: [{ paymentId: payment, amountPaise: t.amount, status: 'captured' }],
      });
    },
    () => {
      const credited = sim.ledger.filter((l) => l.reason === 'topup');
      const c = pick(credited);
      if (c === undefined) return;
      const e: PaymentEvent = {
        event: 'refund.processed',
        topupId: c.topupId!,
        paymentId: c.paymentId!,
        refundId: `rfnd_R${int(3)}${c.paymentId!.slice(4)}`,
        amountPaise: 1 + int(c.amountPaise),
        currency: 'INR',
      };
      events.push(e);
      sim.send(BillingPaymentEvent, e);
    },
    () => {
      sim.send(BillingAdjust, {
        adjustmentId: `a${int(5)}`,
        amountPaise: (int(2) === 0 ? -1 : 1) * (1 + int(5000)),
        note: 'property',
        requestedBy: 'operator',
      });
    },
    () => {
      if (sessions.some((s) => !s.closed)) return;
      const id = `s${++n}`;
      const price = 1000 + int(9000);
      sessions.push({ id, segments: [{ start: now(), end: undefined, price }], closed: false });
      sim.send(BillingMeterOpen, {
        sessionId: id,
        chatId: '42',
        tier: 'spot',
        pricePerHourPaise: price,
        at: sim.now.toISOString(),
      });
    },
    () => {
      const s = sessions.find((x) => !x.closed);
      const seg = s?.segments.at(-1);
      if (s === undefined || seg === undefined || seg.end !== undefined) return;
      // The eviction happened up to two minutes ago; settlements may have run past it.
      const at = Math.max(seg.start, now() - int(2 * MIN));
      seg.end = at;
      sim.send(BillingMeterPause, { sessionId: s.id, at: new Date(at).toISOString() });
    },
    () => {
      const s = sessions.find((x) => !x.closed);
      const seg = s?.segments.at(-1);
      if (s === undefined || seg?.end === undefined) return;
      const price = 1000 + int(9000);
      s.segments.push({ start: Math.max(now(), seg.end), end: undefined, price });
      sim.send(BillingMeterResume, {
        sessionId: s.id,
        tier: 'on_demand',
        pricePerHourPaise: price,
        at: sim.now.toISOString(),
      });
    },
    closeSession,
    () => sim.advance(int(10 * MIN) + int(1000)),
  ];

  const check = (): void => {
    expect(sim.state.balancePaise).toBe(sim.ledgerSum());
    const payments = sim.ledger.filter((l) => l.reason === 'topup').map((l) => l.paymentId);
    expect(new Set(payments).size).toBe(payments.length);
    const perTopup = sim.ledger.filter((l) => l.reason === 'topup').map((l) => l.topupId);
    expect(new Set(perTopup).size).toBe(perTopup.length);
    // Never two payable links for one amount asked for within the reuse window.
    const open = Object.values(sim.state.topups)
      .filter((t) => t.status === 'creating' || t.status === 'pending')
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const [i, t] of open.entries()) {
      for (const u of open.slice(i + 1)) {
        if (u.amountPaise !== t.amountPaise) continue;
        expect(Date.parse(u.createdAt) - Date.parse(t.createdAt)).toBeGreaterThanOrEqual(
          REUSE_LINK_MS,
        );
      }
    }
  };

  for (let i = 0; i < steps; i++) {
    pick(ops)!();
    check();
  }
  const open = sessions.find((x) => !x.closed);
  if (open !== undefined) closeSession();
  check();

  for (const s of sessions) {
    const units = s.segments.reduce(
      (sum, g) => sum + Math.floor((g.end! - g.start) / 1000) * g.price,
      0,
    );
    const charged = sim.usageCharged(s.id);
    expect(charged).toBe(Math.floor(units / 3600));
    expect(units / 3600 - charged).toBeLessThan(1);
  }
  // Every credited top-up matches its request exactly.
  for (const l of sim.ledger.filter((x) => x.reason === 'topup')) {
    expect(l.amountPaise).toBe(topups.find((t) => t.id === l.topupId)!.amount);
  }
}

describe('billing under any interleaving', () => {
  it('keeps balance = Σ ledger, credits no payment twice, charges metered seconds × rate', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 20, max: 200 }),
        (seed, steps) => {
          run(seed, steps);
        },
      ),
      { numRuns: 60, seed: 20_261_126 },
    );
  });
});
