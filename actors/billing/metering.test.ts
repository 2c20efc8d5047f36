import { describe, expect, it } from 'vitest';
import {
  BillingAdjust,
  BillingAdmit,
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  SessionAdmission,
  TelegramSend,
} from '../../contracts/index.ts';
import { BillingSim, MIN, at } from './testkit.ts';

const SPOT = 3000;

function funded(paise: number, config = {}): BillingSim {
  const sim = new BillingSim({ settleIntervalMs: MIN, ...config });
  sim.send(BillingAdjust, {
    adjustmentId: 'seed',
    amountPaise: paise,
    note: 'test credit',
    requestedBy: 'operator',
  });
  return sim;
}

function open(sim: BillingSim, sessionId = 's1', price = SPOT): void {
  sim.send(BillingMeterOpen, {
    sessionId,
    chatId: '42',
    tier: 'spot',
    pricePerHourPaise: price,
    at: sim.now.toISOString(),
  });
}

describe('metering', () => {
  it('charges a 47 m 12 s session exactly, in per-minute settlements with unique keys', () => {
    const sim = funded(100_000);
    open(sim);
    sim.advance(47 * MIN + 12_000);
    sim.send(BillingMeterClose, { sessionId: 's1', at: sim.now.toISOString(), reason: 'player' });
    expect(sim.usageCharged('s1')).toBe(2360);
    const keys = sim.ledger.filter((l) => l.reason === 'usage').map((l) => l.key);
    expect(keys).toHaveLength(48);
    expect(keys[0]).toBe('usage:42:s1:1');
    expect(new Set(keys).size).toBe(keys.length);
    expect(sim.state.balancePaise).toBe(100_000 - 2360);
    expect(sim.state.balancePaise).toBe(sim.ledgerSum());
    expect(sim.state.meters).toEqual({});
    expect(sim.timers.has('settle')).toBe(false);
  });

  it('refuses an open that arrives after its session’s close (a re-injected dead letter)', () => {
    const sim = funded(50_000);
    const openedAt = sim.now.toISOString();
    sim.advance(20 * MIN);
    // The open was dead-lettered; the close comes first and finds no meter.
    sim.send(BillingMeterClose, { sessionId: 's1', at: sim.now.toISOString(), reason: 'player' });
    sim.advance(24 * 60 * MIN);
    sim.send(BillingMeterOpen, {
      sessionId: 's1',
      chatId: '42',
      tier: 'spot',
      pricePerHourPaise: SPOT,
      at: openedAt,
    });
    expect(sim.state.meters).toEqual({});
    sim.advance(60 * MIN);
    expect(sim.usageCharged('s1')).toBe(0);
    expect(sim.state.balancePaise).toBe(50_000);
    expect(sim.timers.has('settle')).toBe(false);
  });

  it('tells the player what the closed session cost and the balance left', () => {
    const sim = funded(100_000);
    open(sim);
    sim.advance(47 * MIN + 12_000);
    sim.send(BillingMeterClose, { sessionId: 's1', at: sim.now.toISOString(), reason: 'player' });
    const last = sim.sent(TelegramSend).at(-1);
    expect(last?.subject).toBe('respawn.out.telegram.42');
    expect(last?.text).toBe('Charged ₹23.60 for this session. Balance: ₹976.40.');
  });

  it('charges to the close time carried by the message, not to when it was handled', () => {
    const sim = funded(100_000);
    open(sim);
    sim.advance(12 * MIN);
    sim.send(BillingMeterClose, { sessionId: 's1', at: at(10 * MIN), reason: 'player' });
    expect(sim.usageCharged('s1')).toBe(500);
    expect(sim.state.balancePaise).toBe(sim.ledgerSum());
  });

  it('ignores a repeated open and an open for a session already closed', () => {
    const sim = funded(100_000);
    open(sim);
    sim.advance(5 * MIN);
    open(sim);
    sim.send(BillingMeterClose, { sessionId: 's1', at: sim.now.toISOString(), reason: 'player' });
    open(sim);
    sim.advance(10 * MIN);
    expect(sim.usageCharged('s1')).toBe(250);
    expect(sim.state.meters).toEqual({});
  });

  it('does not charge the minutes between an eviction and the resume', () => {
    const sim = funded(100_000);
    open(sim);
    sim.advance(10 * MIN);
    sim.send(BillingMeterPause, { sessionId: 's1', at: sim.now.toISOString() });
    sim.advance(15 * MIN);
    expect(sim.usageCharged('s1')).toBe(500);
    sim.send(BillingMeterResume, {
      sessionId: 's1',
      tier: 'spot',
      pricePerHourPaise: SPOT,
      at: sim.now.toISOString(),
    });
    sim.advance(15 * MIN);
    sim.send(BillingMeterClose, { sessionId: 's1', at: sim.now.toISOString(), reason: 'player' });
    expect(sim.usageCharged('s1')).toBe((25 * SPOT) / 60);
  });

  it('gives back a settlement that ran past the eviction time reported later', () => {
    const sim = funded(100_000);
    open(sim);
    sim.advance(12 * MIN);
    expect(sim.usageCharged('s1')).toBe(600);
    // Evicted at 10:00; the session actor's pause arrives after the 11:00 and 12:00 settlements.
    sim.send(BillingMeterPause, { sessionId: 's1', at: at(10 * MIN) });
    expect(sim.usageCharged('s1')).toBe(500);
    const last = sim.ledger.at(-1)!;
    expect(last.amountPaise).toBe(100);
    expect(sim.state.balancePaise).toBe(sim.ledgerSum());
    sim.advance(30 * MIN);
    expect(sim.usageCharged('s1')).toBe(500);
  });

  it('stops settling while every meter is paused and starts again on resume', () => {
    const sim = funded(100_000);
    open(sim);
    sim.send(BillingMeterPause, { sessionId: 's1', at: sim.now.toISOString() });
    expect(sim.timers.has('settle')).toBe(false);
    sim.send(BillingMeterResume, {
      sessionId: 's1',
      tier: 'on_demand',
      pricePerHourPaise: 9000,
      at: sim.now.toISOString(),
    });
    expect(sim.timers.get('settle')?.at.getTime()).toBe(sim.now.getTime() + MIN);
    sim.advance(10 * MIN);
    expect(sim.usageCharged('s1')).toBe(1500);
  });
});

describe('admission', () => {
  const admit = (sim: BillingSim) => {
    sim.send(BillingAdmit, { sessionId: 'next', chatId: '42', cheapestPricePerHourPaise: SPOT });
    return sim.sent(SessionAdmission).at(-1)!;
  };

  it('admits a player whose balance covers the minimum minutes at the cheapest tier', () => {
    const a = admit(funded(750, { minMinutes: 15 }));
    expect(a).toMatchObject({
      sessionId: 'next',
      allowed: true,
      balancePaise: 750,
      requiredPaise: 750,
    });
    expect(a.subject).toBe('respawn.session.42.cmd.admission');
  });

  it('refuses a player one paisa short, and one with nothing', () => {
    expect(admit(funded(749, { minMinutes: 15 })).allowed).toBe(false);
    const broke = new BillingSim({ minMinutes: 0 });
    expect(admit(broke)).toMatchObject({ allowed: false, balancePaise: 0, requiredPaise: 0 });
  });

  it('counts usage not yet settled against the balance', () => {
    const sim = funded(1000, { minMinutes: 15, settleIntervalMs: 60 * MIN });
    open(sim);
    sim.advance(10 * MIN);
    expect(sim.ledger.filter((l) => l.reason === 'usage')).toHaveLength(0);
    expect(admit(sim)).toMatchObject({ allowed: false, balancePaise: 500 });
  });
});
