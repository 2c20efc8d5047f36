import { describe, expect, it } from 'vitest';
import {
  BillingAdjust,
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  SessionStop,
  TelegramSend,
} from '../../contracts/index.ts';
import { STOP_AGAIN_MS } from './credit.ts';
import { BillingSim, MIN, T0 } from './testkit.ts';

const SPOT = 3000; // 50 paise a minute

/** A player with exactly `minutes` of Spot credit, playing from T0. */
function playing(minutes: number, config = {}): BillingSim {
  const sim = new BillingSim({ settleIntervalMs: MIN, ...config });
  sim.send(BillingAdjust, {
    adjustmentId: 'seed',
    amountPaise: minutes * 50,
    note: 'test credit',
    requestedBy: 'operator',
  });
  sim.send(BillingMeterOpen, {
    sessionId: 's1',
    chatId: '42',
    tier: 'spot',
    pricePerHourPaise: SPOT,
    at: sim.now.toISOString(),
  });
  return sim;
}

const warnings = (sim: BillingSim) => sim.sent(TelegramSend).filter((m) => m.text.startsWith('⏳'));
const stops = (sim: BillingSim) => sim.sent(SessionStop);
const minutesAfterT0 = (sim: BillingSim) => (sim.now.getTime() - T0.getTime()) / MIN;

describe('running out of credit', () => {
  it('warns at 10, 5 and 1 minutes before the end and asks the session to stop at zero', () => {
    const sim = playing(30);
    expect(sim.timers.get('warn-10')?.at).toEqual(new Date(T0.getTime() + 20 * MIN));
    expect(sim.timers.get('out_of_credit')?.at).toEqual(new Date(T0.getTime() + 30 * MIN));

    const seen: [number, string][] = [];
    for (let m = 1; m <= 30; m++) {
      const before = warnings(sim).length;
      sim.advanceTo(new Date(T0.getTime() + m * MIN));
      for (const w of warnings(sim).slice(before)) seen.push([m, w.text]);
    }
    expect(seen.map(([m]) => m)).toEqual([20, 25, 29]);
    expect(seen[0]![1]).toMatch(/About 10 minutes of play left/);
    expect(seen[1]![1]).toMatch(/About 5 minutes/);
    expect(seen[2]![1]).toMatch(/About 1 minute of play left/);
    for (const w of warnings(sim)) expect(w.subject).toBe('respawn.out.telegram.42');

    expect(stops(sim)).toHaveLength(1);
    expect(stops(sim)[0]).toMatchObject({
      requestedBy: 'system',
      reason: 'out_of_credit',
      subject: 'respawn.session.42.cmd.stop',
    });
    expect(sim.state.credit.stopRequestedAt).toBe(new Date(T0.getTime() + 30 * MIN).toISOString());
    expect(sim.state.balancePaise).toBe(0);
    // Until the session reports its close the VM runs and is metered, but nobody is told twice.
    sim.advance(MIN);
    expect(stops(sim)).toHaveLength(1);
    expect(seen).toHaveLength(3);
    expect(warnings(sim)).toHaveLength(3);
  });

  it('asks the session again, naming its meters, while one still runs after the stop, telling the player once', () => {
    const sim = playing(2);
    sim.advance(2 * MIN);
    expect(stops(sim)).toHaveLength(1);
    expect(stops(sim)[0]!.meteredSessionIds).toEqual(['s1']);
    const notices = () => sim.sent(TelegramSend).filter((m) => m.text.startsWith('🛑'));
    expect(notices()).toHaveLength(1);
    // The session could not act on it (its meter outlived it): asked again every two minutes.
    sim.advance(STOP_AGAIN_MS);
    expect(stops(sim)).toHaveLength(2);
    sim.advance(STOP_AGAIN_MS);
    expect(stops(sim)).toHaveLength(3);
    expect(stops(sim)[2]).toMatchObject({ reason: 'out_of_credit', meteredSessionIds: ['s1'] });
    expect(notices()).toHaveLength(1);
    // Closed: no more asking.
    sim.send(BillingMeterClose, {
      sessionId: 's1',
      at: sim.now.toISOString(),
      reason: 'not_running',
    });
    sim.advance(10 * MIN);
    expect(stops(sim)).toHaveLength(3);
    expect(sim.timers.size).toBe(0);
  });

  it('cancels the stop when a top-up lands before zero, and plans again from the new balance', () => {
    const sim = playing(30);
    sim.advanceTo(new Date(T0.getTime() + 27 * MIN));
    expect(warnings(sim)).toHaveLength(2);
    sim.send(BillingAdjust, {
      adjustmentId: 'topup',
      amountPaise: 60 * 50,
      note: 'top-up',
      requestedBy: 'operator',
    });
    expect(sim.timers.get('out_of_credit')?.at).toEqual(new Date(T0.getTime() + 90 * MIN));
    sim.advanceTo(new Date(T0.getTime() + 60 * MIN));
    expect(stops(sim)).toHaveLength(0);
    // The 10- and 5-minute warnings come again before the new end.
    sim.advanceTo(new Date(T0.getTime() + 91 * MIN));
    expect(warnings(sim)).toHaveLength(5);
    expect(stops(sim)).toHaveLength(1);
    expect(minutesAfterT0(sim)).toBe(91);
  });

  it('sends one warning, not three, when a session starts inside the warning window', () => {
    const sim = playing(3);
    expect(warnings(sim)).toHaveLength(1);
    expect(warnings(sim)[0]!.text).toMatch(/About 3 minutes/);
    expect(sim.timers.has('warn-10')).toBe(false);
    expect(sim.timers.has('warn-5')).toBe(false);
    expect(sim.timers.get('warn-1')?.at).toEqual(new Date(T0.getTime() + 2 * MIN));
    sim.advanceTo(new Date(T0.getTime() + 4 * MIN));
    expect(warnings(sim)).toHaveLength(2);
    expect(stops(sim)).toHaveLength(1);
  });

  it('asks for a stop at once when a session opens with nothing left', () => {
    const sim = new BillingSim();
    sim.send(BillingMeterOpen, {
      sessionId: 's1',
      chatId: '42',
      tier: 'spot',
      pricePerHourPaise: SPOT,
      at: sim.now.toISOString(),
    });
    expect(stops(sim)).toHaveLength(1);
    sim.advance(MIN);
    expect(stops(sim)).toHaveLength(1);
  });

  it('plans nothing while the only meter is paused by an eviction', () => {
    const sim = playing(30);
    sim.advance(5 * MIN);
    sim.send(BillingMeterPause, { sessionId: 's1', at: sim.now.toISOString() });
    expect([...sim.timers.keys()]).toEqual([]);
    expect(sim.state.credit.endsAt).toBeNull();
    sim.advance(120 * MIN);
    expect(stops(sim)).toHaveLength(0);
    expect(warnings(sim)).toHaveLength(0);
  });

  it('forgets a requested stop once the session has closed', () => {
    const sim = playing(2);
    sim.advance(3 * MIN);
    expect(stops(sim)).toHaveLength(1);
    sim.send(BillingMeterClose, {
      sessionId: 's1',
      at: sim.now.toISOString(),
      reason: 'out_of_credit',
    });
    expect(sim.state.credit).toEqual({ warned: [], endsAt: null, stopRequestedAt: null });
    expect(sim.timers.size).toBe(0);
  });

  it('sends each warning and the out-of-credit notice as a new message, never an edit', () => {
    const sim = playing(30);
    sim.advanceTo(new Date(T0.getTime() + 31 * MIN));
    const alerts = sim
      .sent(TelegramSend)
      .filter((m) => m.text.startsWith('⏳') || m.text.startsWith('🛑'));
    expect(alerts.map((m) => (m.text.startsWith('⏳') ? 'warning' : 'stop'))).toEqual([
      'warning',
      'warning',
      'warning',
      'stop',
    ]);
    // No editKey: Telegram notifies the player of each. A newer alert may replace one still
    // queued at the gateway (collapseKey), which never leaves the player without the latest.
    for (const m of alerts) {
      expect(m.editKey).toBeUndefined();
      expect(m.collapseKey).toBe('billing:credit');
    }
  });

  it('gives a later session its own new warnings, never an edit of an earlier session’s message', () => {
    const sim = playing(12);
    sim.advanceTo(new Date(T0.getTime() + 13 * MIN));
    sim.send(BillingMeterClose, {
      sessionId: 's1',
      at: sim.now.toISOString(),
      reason: 'out_of_credit',
    });
    const first = sim.sent(TelegramSend).length;
    sim.send(BillingAdjust, {
      adjustmentId: 'second',
      amountPaise: 20 * 50,
      note: 'top-up',
      requestedBy: 'operator',
    });
    sim.send(BillingMeterOpen, {
      sessionId: 's2',
      chatId: '42',
      tier: 'spot',
      pricePerHourPaise: SPOT,
      at: sim.now.toISOString(),
    });
    sim.advance(21 * MIN);
    const later = sim.sent(TelegramSend).slice(first);
    expect(later.filter((m) => m.text.startsWith('⏳'))).toHaveLength(3);
    expect(later.filter((m) => m.text.startsWith('🛑'))).toHaveLength(1);
    // No editKey is shared between the sessions' messages (none of billing's alerts has one).
    const keysOf = (ms: typeof later) =>
      new Set(ms.flatMap((m) => (m.editKey === undefined ? [] : [m.editKey])));
    const earlier = keysOf(sim.sent(TelegramSend).slice(0, first));
    for (const k of keysOf(later)) expect(earlier.has(k)).toBe(false);
    for (const m of sim.sent(TelegramSend).filter((x) => /^[⏳🛑]/u.test(x.text))) {
      expect(m.editKey).toBeUndefined();
    }
  });

  it('uses the configured warning points', () => {
    const sim = playing(60, { warnMinutes: [30, 2] });
    expect([...sim.timers.keys()].sort()).toEqual(['out_of_credit', 'settle', 'warn-2', 'warn-30']);
  });
});
