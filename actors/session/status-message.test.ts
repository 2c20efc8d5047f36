/**
 * What lands in the player's chat as one message edited in place, and what is a new message:
 * each allocation round has one status message (starting → place in line → the rig got, or
 * why not); ready, an eviction and a stop are new messages, so the player's phone tells them.
 */
import { describe, expect, it } from 'vitest';
import {
  SessionAdmission,
  SessionAgentReady,
  SessionAllocFailed,
  SessionAllocated,
  SessionPreempt,
  SessionQueued,
  SessionStart,
  SessionStop,
  SessionVmReleased,
  TelegramSend,
} from '../../contracts/index.ts';
import type { HandlerResult } from '../runtime/index.ts';
import { defaultSessionConfig, initialSessionState } from './state.ts';
import { roundKey, stopKey } from './steps.ts';
import { later, of, sessionHandler, spotAllocated, toReady, toStarting } from './testkit.ts';

const handle = sessionHandler(defaultSessionConfig);
/** [text, editKey] of every Telegram message emitted. */
const told = (r: HandlerResult<unknown>): [string, string | undefined][] =>
  of(r, TelegramSend).map((m) => [m.text, m.editKey]);
const allocated = spotAllocated;

describe("the session's status message", () => {
  it('says nothing before billing admits the start, and a refusal in one new message', () => {
    const start = handle(initialSessionState(), SessionStart, {
      requestedBy: 'player',
      chatId: '42',
    });
    const refused = handle(start.state, SessionAdmission, {
      sessionId: 'p1-1',
      allowed: false,
      balancePaise: 0,
      requiredPaise: 750,
    });
    // No "Starting…" to be edited into a refusal (the phone would show "Starting" first).
    expect(told(start)).toEqual([]);
    expect(told(refused)).toEqual([
      [expect.stringMatching(/^Your balance is ₹0\.00/), 'alloc:p1-1:1'],
    ]);
    // Admitted: "Starting…" is the round's status message.
    const admitted = handle(start.state, SessionAdmission, {
      sessionId: 'p1-1',
      allowed: true,
      balancePaise: 10_000,
      requiredPaise: 750,
    });
    expect(told(admitted)).toEqual([[expect.stringMatching(/^Starting your rig/), 'alloc:p1-1:1']]);
    // With the way out on it: the router turns this press into the top-up amounts.
    expect(of(refused, TelegramSend)[0]!.buttons).toEqual([[{ text: 'Top up', data: 'topup' }]]);
  });

  it('edits the same message through a place in line to the rig got', () => {
    const s = toStarting(handle);
    const queued = handle(s, SessionQueued, {
      sessionId: 'p1-1',
      position: 3,
      estimateSeconds: 300,
    });
    const moved = handle(queued.state, SessionQueued, {
      sessionId: 'p1-1',
      position: 1,
      estimateSeconds: 100,
    });
    const got = handle(moved.state, SessionAllocated, allocated);
    expect([...told(queued), ...told(moved), ...told(got)]).toEqual([
      [expect.stringContaining('number 3 in line'), 'alloc:p1-1:1'],
      [expect.stringContaining('number 1 in line'), 'alloc:p1-1:1'],
      [expect.stringMatching(/^Got a Spot GPU rig/), 'alloc:p1-1:1'],
    ]);
  });

  it('tells a new price while booting in a new message too (an edit notifies nobody)', () => {
    const got = handle(toStarting(handle), SessionAllocated, allocated);
    const fellBack = handle(got.state, SessionAllocated, {
      ...allocated,
      vmName: 'vm-od',
      tier: 'on_demand',
      pricePerHourPaise: 9_000,
    });
    expect(told(fellBack)).toEqual([
      [expect.stringMatching(/^Got an On-Demand GPU rig at ₹90\.00\/hour/), 'alloc:p1-1:1'],
      [
        'No Spot GPU was free after all: you get an On-Demand rig at ₹90.00/hour instead. Booting…',
        undefined,
      ],
    ]);
    // Another candidate at the same price: the status message alone.
    const same = handle(got.state, SessionAllocated, { ...allocated, vmName: 'vm-spot2' });
    expect(told(same)).toEqual([[expect.stringMatching(/^Got a Spot GPU rig/), 'alloc:p1-1:1']]);
  });

  it('has keys the out contract takes for the longest session id', () => {
    const longest = { ...initialSessionState(), sessionId: 'p'.repeat(64), allocation: 1_000 };
    for (const editKey of [roundKey(longest), stopKey(longest)]) {
      expect(() => TelegramSend.encode({ chatId: '42', text: 'x', editKey })).not.toThrow();
    }
  });

  it('says ready in a new message', () => {
    const got = handle(toStarting(handle), SessionAllocated, allocated);
    const ready = handle(got.state, SessionAgentReady, {
      sessionId: 'p1-1',
      vmName: 'vm-a',
      host: '10.0.0.4',
      port: 47989,
      pin: '1234',
    });
    expect(told(ready)).toEqual([[expect.stringMatching(/^Your rig is ready/), undefined]]);
  });

  it('says an eviction in a new message, and the next rig in a status message of its own', () => {
    const evicted = handle(toReady(handle), SessionPreempt, {
      sessionId: 'p1-1',
      vmName: 'vm-a',
      eventId: 'ev-1',
      notBefore: new Date('2026-03-01T18:00:30Z').toISOString(),
    });
    const got = handle(evicted.state, SessionAllocated, { ...allocated, vmName: 'vm-b' });
    expect(told(evicted)).toEqual([[expect.stringMatching(/^Azure reclaimed/), undefined]]);
    expect(told(got)).toEqual([[expect.stringMatching(/^Got a Spot GPU rig/), 'alloc:p1-1:2']]);
  });

  it('edits "Stopping…" into how long the session ran', () => {
    const stopping = handle(toReady(handle), SessionStop, {
      requestedBy: 'player',
      reason: 'player',
    });
    const stopped = handle(stopping.state, SessionVmReleased, {
      sessionId: 'p1-1',
      vmName: 'vm-a',
    });
    expect(told(stopping)).toEqual([[expect.stringMatching(/^Stopping/), 'stop:p1-1']]);
    expect(told(stopped)).toEqual([
      ['Session stopped after 0 seconds: you pressed Stop. Your disk is saved.', 'stop:p1-1'],
    ]);
  });

  it('tells how long the whole session was played, from its first rig, less an eviction’s gap', () => {
    const evicted = handle(
      toReady(handle),
      SessionPreempt,
      { sessionId: 'p1-1', vmName: 'vm-a', eventId: 'ev-1' },
      later(60_000),
    );
    const got = handle(evicted.state, SessionAllocated, { ...allocated, vmName: 'vm-b' });
    const back = handle(
      got.state,
      SessionAgentReady,
      { sessionId: 'p1-1', vmName: 'vm-b', host: '10.0.0.5', port: 47989, pin: '4321' },
      later(120_000),
    );
    const stopping = handle(
      back.state,
      SessionStop,
      { requestedBy: 'player', reason: 'player' },
      later(300_000),
    );
    const stopped = handle(
      stopping.state,
      SessionVmReleased,
      { sessionId: 'p1-1', vmName: 'vm-b' },
      later(330_000),
    );
    // Played 0–60 s and 120–300 s: 4 minutes, as billed; not the minute without a rig, nor
    // the half minute the VM took to be deleted.
    expect(told(stopped)[0]?.[0]).toBe(
      'Session stopped after 4 minutes: you pressed Stop. Your disk is saved.',
    );
  });

  it('says a failed start once, as news (an edit does not notify), and nothing more on release', () => {
    const got = handle(toStarting(handle), SessionAllocated, allocated);
    const failed = handle(got.state, SessionAllocFailed, {
      sessionId: 'p1-1',
      reason: 'no GPU is free in centralindia',
    });
    const released = handle(failed.state, SessionVmReleased, {
      sessionId: 'p1-1',
      vmName: 'vm-a',
    });
    expect(told(failed)).toEqual([
      [expect.stringMatching(/^Could not start your rig: no GPU is free/), 'alloc:p1-1:1'],
    ]);
    // A new message that takes the status message's key over.
    expect(of(failed, TelegramSend)[0]!.fresh).toBe(true);
    expect(released.state.phase).toBe('idle');
    expect(told(released)).toEqual([]);
  });

  it('does not say "not charged" when no other rig is found after an eviction', () => {
    const evicted = handle(toReady(handle), SessionPreempt, {
      sessionId: 'p1-1',
      vmName: 'vm-a',
      eventId: 'ev-1',
    });
    const failed = handle(evicted.state, SessionAllocFailed, {
      sessionId: 'p1-1',
      reason: 'no GPU is free in centralindia',
    });
    expect(told(failed)).toEqual([
      [
        'Could not get you another rig: no GPU is free in centralindia. Your session has ended; your disk is saved.',
        'alloc:p1-1:2',
      ],
    ]);
    expect(of(failed, TelegramSend)[0]!.fresh).toBe(true);
  });
});
