import { describe, expect, it } from 'vitest';
import {
  AllocRelease,
  AllocRequest,
  AzureArchiveDisk,
  BillingAdmit,
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  SessionAdmission,
  SessionAgentReady,
  SessionAllocated,
  SessionQueued,
  SessionSettings,
  SessionChanged,
  SessionDiskArchived,
  SessionDiskFound,
  SessionDiskMissing,
  SessionHeartbeat,
  SessionPreempt,
  SessionStart,
  SessionStatus,
  SessionStop,
  SessionVmCheck,
  SessionVmReleased,
  TelegramSend,
  TerminalError,
  TimerFired,
  type MessageOf,
} from '../../contracts/index.ts';
import type { HandlerResult } from '../runtime/index.ts';
import { createSessionActor } from './actor.ts';
import { INPUT_ORDER_WINDOW_MS } from './input-order.ts';
import {
  P,
  T0,
  later,
  of,
  sessionHandler,
  spotAllocated,
  subjects,
  texts,
  timer,
  toReady as readyIn,
  toStarting as startingIn,
} from './testkit.ts';
import { defaultSessionConfig, initialSessionState, type SessionState } from './state.ts';

const handle = sessionHandler({ ...defaultSessionConfig, maxResumes: 2 });
const toStarting = (): SessionState => startingIn(handle);
const toReady = (): SessionState => readyIn(handle);
/** The heartbeat-loss timer of session p1-1, due at `dueMs` and fired at `firedMs`. */
const heartbeatsLost = (
  s: SessionState,
  dueMs: number,
  firedMs: number,
): HandlerResult<SessionState> =>
  handle(
    s,
    TimerFired,
    {
      timerId: '1',
      name: 'hb_lost',
      dueAt: later(dueMs).toISOString(),
      firedAt: later(firedMs).toISOString(),
      data: { sessionId: 'p1-1' },
    },
    later(firedMs),
  );
/** Session p1-1 started, waiting for billing's answer. */
const asking = (): SessionState =>
  handle(initialSessionState(), SessionStart, { requestedBy: 'player', chatId: '42' }).state;
/** Billing admits the start waiting in `s`. */
const admit = (s: SessionState): HandlerResult<SessionState> =>
  handle(s, SessionAdmission, {
    sessionId: s.sessionId!,
    allowed: true,
    balancePaise: 100_000,
    requiredPaise: 7_500,
  });

describe('session actor', () => {
  it('starts from idle: asks billing for admission, tells the player, announces starting', () => {
    const r = handle(initialSessionState(), SessionStart, { requestedBy: 'player', chatId: '42' });
    expect(r.state).toMatchObject({
      phase: 'starting',
      sessionId: 'p1-1',
      chatId: '42',
      allocation: 1,
    });
    expect(subjects(r, BillingAdmit)).toEqual(['respawn.billing.p1.cmd.admit']);
    expect(of(r, SessionChanged).map((e) => e.phase)).toEqual(['starting']);
    // "Starting…" waits for billing's yes: a refused start is never announced as starting.
    expect(texts(r)).toEqual([]);
    const admitted = admit(r.state);
    expect(texts(admitted)).toEqual(['Starting your rig… I will tell you when it is ready.']);
    expect(of(admitted, AllocRequest)).toHaveLength(1);
  });

  it('answers a second start with "already …" and changes nothing else', () => {
    const s = handle(initialSessionState(), SessionStart, {
      requestedBy: 'player',
      chatId: '42',
    }).state;
    const r = handle(s, SessionStart, { requestedBy: 'player', chatId: '42' });
    expect(r.state).toEqual({ ...s, alreadyTold: { at: T0.toISOString(), phase: 'starting' } });
    expect(texts(r)).toEqual([expect.stringContaining('already starting')]);
    expect(of(r, BillingAdmit)).toEqual([]);
    expect(of(r, AllocRequest)).toEqual([]);
  });

  it('refuses, for good and with the reason, a start for a player key too long for a session id', () => {
    const a = createSessionActor(defaultSessionConfig);
    const start = SessionStart.decode(SessionStart.encode({ requestedBy: 'operator' }));
    const ctx = { kind: 'session' as const, now: T0, msgId: 'm', subject: 's', redeliveries: 0 };
    expect(() =>
      a.handle(initialSessionState(), start as never, { ...ctx, key: 'k'.repeat(62) }),
    ).not.toThrow();
    let refused: unknown;
    try {
      a.handle(initialSessionState(), start, { ...ctx, key: 'k'.repeat(63) });
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(TerminalError);
    expect((refused as TerminalError).code).toBe('rejected');
    expect((refused as TerminalError).message).toContain('player key is 63 characters');
  });

  it('refuses, for good and with the reason, a start naming a region nobody serves', () => {
    const a = createSessionActor({ ...defaultSessionConfig, regions: ['southindia'] });
    const ctx = {
      kind: 'session' as const,
      key: 'p1',
      now: T0,
      msgId: 'm',
      subject: 's',
      redeliveries: 0,
    };
    const start = (region: string) =>
      SessionStart.decode(SessionStart.encode({ requestedBy: 'operator', region }));
    let refused: unknown;
    try {
      a.handle(initialSessionState(), start('nowhere1'), ctx);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(TerminalError);
    expect((refused as TerminalError).code).toBe('rejected');
    expect((refused as TerminalError).message).toBe(
      'region nowhere1 is not served here (served: centralindia, southindia)',
    );
    // The default region and the listed ones start.
    for (const region of ['centralindia', 'southindia']) {
      expect(a.handle(initialSessionState(), start(region), ctx).state).toMatchObject({
        phase: 'starting',
        region,
      });
    }
    // A player whose disk lives in a served region starts there, whatever the start names.
    const withDisk = { ...initialSessionState(), diskState: 'live' as const, region: 'southindia' };
    expect(a.handle(withDisk, start('nowhere1'), ctx).state).toMatchObject({
      phase: 'starting',
      region: 'southindia',
    });
  });

  it('answers impatient presses once in repeatReplyMs, so they do not queue up in the chat', () => {
    let s = handle(initialSessionState(), SessionStart, {
      requestedBy: 'player',
      chatId: '42',
    }).state;
    const told: string[] = [];
    // A press a second for 25 s: answered at 1 s, 11 s and 21 s.
    for (let second = 1; second <= 25; second++) {
      const r = handle(s, SessionStart, { requestedBy: 'player' }, later(second * 1_000));
      if (texts(r).length === 0) expect(r.state).toBe(s);
      told.push(...texts(r).map(() => `${second}s`));
      s = r.state;
    }
    expect(told).toEqual(['1s', '11s', '21s']);
    // The session moved on (the allocator answered): the next press hears the news at once.
    const booting = handle(s, SessionAdmission, {
      sessionId: 'p1-1',
      allowed: true,
      balancePaise: 50_000,
      requiredPaise: 1_500,
    }).state;
    const allocated = handle(booting, SessionAllocated, spotAllocated, later(22_000)).state;
    const r = handle(allocated, SessionStart, { requestedBy: 'player' }, later(23_000));
    expect(texts(r)).toEqual([expect.stringContaining('already booting')]);
  });

  it("starts where the player's disk is, whatever region the start names, and says so", () => {
    const withDisk = { ...initialSessionState(), diskState: 'live' as const, region: 'westeurope' };
    const r = handle(withDisk, SessionStart, {
      requestedBy: 'player',
      chatId: '42',
      region: 'centralindia',
    });
    expect(r.state.region).toBe('westeurope');
    expect(texts(admit(r.state))).toContainEqual(
      expect.stringContaining('Your disk is in westeurope'),
    );
    const archived = handle({ ...withDisk, diskState: 'archived' }, SessionStart, {
      requestedBy: 'player',
    });
    expect(archived.state.region).toBe('westeurope');
    expect(texts(admit(archived.state)).some((t) => t.includes('Your disk is in'))).toBe(false);
    // Without a disk the start's region (or the default) is taken.
    const fresh = handle({ ...withDisk, diskState: 'none' }, SessionStart, {
      requestedBy: 'player',
      region: 'centralindia',
    });
    expect(fresh.state.region).toBe('centralindia');
  });

  it('goes back to idle with a top-up hint when billing refuses admission', () => {
    const s = handle(initialSessionState(), SessionStart, {
      requestedBy: 'player',
      chatId: '42',
    }).state;
    const r = handle(s, SessionAdmission, {
      sessionId: 'p1-1',
      allowed: false,
      balancePaise: 500,
      requiredPaise: 1_500,
    });
    expect(r.state.phase).toBe('idle');
    expect(texts(r)[0]).toContain('₹5');
    expect(of(r, AllocRequest)).toEqual([]);
  });

  it('takes billing’s answer once: a second one, even a refusal, changes nothing', () => {
    const admitted = admit(
      handle(initialSessionState(), SessionStart, { requestedBy: 'player' }).state,
    );
    expect(of(admitted, AllocRequest)).toHaveLength(1);
    for (const allowed of [false, true]) {
      const again = handle(admitted.state, SessionAdmission, {
        sessionId: 'p1-1',
        allowed,
        balancePaise: 0,
        requiredPaise: 1_500,
      });
      // Going idle here would leave the allocation request behind, unreleased.
      expect(again.state).toEqual(admitted.state);
      expect(again.emit ?? []).toEqual([]);
    }
  });

  it('asks the region’s allocator once admitted, then tells tier and price when allocated', () => {
    let s = handle(initialSessionState(), SessionStart, {
      requestedBy: 'player',
      chatId: '42',
    }).state;
    const admitted = handle(s, SessionAdmission, {
      sessionId: 'p1-1',
      allowed: true,
      balancePaise: 1,
      requiredPaise: 1,
    });
    expect(subjects(admitted, AllocRequest)).toEqual(['respawn.alloc.centralindia.cmd.request']);
    expect(of(admitted, AllocRequest)[0]).toMatchObject({
      sessionId: 'p1-1',
      playerId: 'p1',
      allocation: 1,
    });
    s = admitted.state;
    const r = handle(s, SessionAllocated, {
      sessionId: 'p1-1',
      region: 'centralindia',
      tier: 'on_demand',
      size: 'NC4',
      pricePerHourPaise: 9_000,
      vmName: 'vm-b',
    });
    expect(r.state).toMatchObject({ phase: 'provisioning', tier: 'on_demand', vmName: 'vm-b' });
    expect(texts(r)[0]).toMatch(/^Got an On-Demand GPU rig at ₹90\.00\/hour\./);
    expect(timer(r, 'provision_timeout')).toBeDefined();
  });

  it('opens the meter when the agent reports ready, with how to connect', () => {
    let s = handle(initialSessionState(), SessionStart, {
      requestedBy: 'player',
      chatId: '42',
    }).state;
    s = handle(s, SessionAdmission, {
      sessionId: 'p1-1',
      allowed: true,
      balancePaise: 1,
      requiredPaise: 1,
    }).state;
    s = handle(s, SessionAllocated, spotAllocated).state;
    const r = handle(
      s,
      SessionAgentReady,
      { sessionId: 'p1-1', vmName: 'vm-a', host: '10.0.0.4', port: 47989, pin: '1234' },
      later(60_000),
    );
    expect(r.state).toMatchObject({ phase: 'ready', meterOpen: true });
    expect(of(r, BillingMeterOpen)).toEqual([
      expect.objectContaining({
        sessionId: 'p1-1',
        tier: 'spot',
        pricePerHourPaise: 3_000,
        at: later(60_000).toISOString(),
      }),
    ]);
    expect(texts(r)[0]).toContain('10.0.0.4:47989');
    expect(texts(r)[0]).toContain('1234');
    expect(timer(r, 'hb_lost')).toMatchObject({
      at: later(60_000 + defaultSessionConfig.heartbeatLossMs),
    });
    expect(timer(r, 'idle_stop')).toMatchObject({
      at: later(60_000 + defaultSessionConfig.idleTimeoutMs),
    });
  });

  it('ignores an agent report from another VM (a stale agent)', () => {
    let s = handle(initialSessionState(), SessionStart, {
      requestedBy: 'player',
      chatId: '42',
    }).state;
    s = handle(s, SessionAdmission, {
      sessionId: 'p1-1',
      allowed: true,
      balancePaise: 1,
      requiredPaise: 1,
    }).state;
    s = handle(s, SessionAllocated, spotAllocated).state;
    const r = handle(s, SessionAgentReady, {
      sessionId: 'p1-1',
      vmName: 'vm-old',
      host: 'h',
      port: 1,
      pin: '1234',
    });
    expect(r.state).toEqual(s);
    // Said why, for the operator's log ("message ignored").
    expect(r.ignored).toBe('ready from vm-old (p1-1) in provisioning on vm-a');
    expect(r.emit ?? []).toEqual([]);
  });

  it('moves to playing on the first input and pushes the idle timers from the last input', () => {
    const s = toReady();
    const r = handle(
      s,
      SessionHeartbeat,
      {
        sessionId: 'p1-1',
        vmName: 'vm-a',
        at: later(120_000).toISOString(),
        lastInputAt: later(110_000).toISOString(),
      },
      later(120_000),
    );
    expect(r.state.phase).toBe('playing');
    expect(timer(r, 'idle_stop')).toMatchObject({
      at: later(110_000 + defaultSessionConfig.idleTimeoutMs),
    });
  });

  it('leaves the idle timers alone on a heartbeat without new input, so a warning fires once', () => {
    const hb = (state: SessionState, atMs: number, lastInputMs?: number) =>
      handle(
        state,
        SessionHeartbeat,
        {
          sessionId: 'p1-1',
          vmName: 'vm-a',
          at: later(atMs).toISOString(),
          ...(lastInputMs === undefined ? {} : { lastInputAt: later(lastInputMs).toISOString() }),
        },
        later(atMs),
      );
    const first = hb(toReady(), 60_000, 50_000);
    expect(timer(first, 'idle_warn')).toBeDefined();
    // The same last input, reported again after the warning time: nothing re-arms the warning.
    const warnAt = 50_000 + defaultSessionConfig.idleTimeoutMs - defaultSessionConfig.idleWarningMs;
    const again = hb(first.state, warnAt + 30_000, 50_000);
    expect(timer(again, 'idle_warn')).toBeUndefined();
    expect(timer(again, 'idle_stop')).toBeUndefined();
    expect(timer(again, 'hb_lost')).toBeDefined();
    // New input moves them.
    const moved = hb(again.state, warnAt + 60_000, warnAt + 55_000);
    expect(timer(moved, 'idle_stop')).toMatchObject({
      at: later(warnAt + 55_000 + defaultSessionConfig.idleTimeoutMs),
    });
  });

  it('on a Preempt: pauses billing at the notice, tells the disk is safe, and resumes on a new VM', () => {
    const s = toReady();
    const r = handle(
      s,
      SessionPreempt,
      { sessionId: 'p1-1', vmName: 'vm-a', eventId: 'e1', notBefore: later(30_000).toISOString() },
      later(5_000),
    );
    expect(r.state).toMatchObject({ phase: 'resuming', allocation: 2 });
    expect(of(r, SessionChanged).map((e) => e.phase)).toEqual(['evicted', 'resuming']);
    expect(of(r, BillingMeterPause)).toEqual([
      { type: 'billing.meter_pause.v1', sessionId: 'p1-1', at: later(5_000).toISOString() },
    ]);
    expect(of(r, AllocRelease)[0]).toMatchObject({ sessionId: 'p1-1', reason: 'evicted' });
    expect(of(r, AllocRequest)[0]).toMatchObject({ sessionId: 'p1-1', allocation: 2 });
    expect(texts(r)[0]).toContain('disk is safe');
    let t = handle(r.state, SessionAllocated, { ...spotAllocated, vmName: 'vm-c' }).state;
    const back = handle(
      t,
      SessionAgentReady,
      { sessionId: 'p1-1', vmName: 'vm-c', host: '10.0.0.9', port: 47989, pin: '9999' },
      later(90_000),
    );
    t = back.state;
    expect(t.phase).toBe('ready');
    expect(of(back, BillingMeterOpen)).toEqual([]);
    expect(of(back, BillingMeterResume)).toEqual([
      expect.objectContaining({ at: later(90_000).toISOString() }),
    ]);
  });

  it('pauses billing when the agent saw the notice, not when its report arrived, within bounds', () => {
    const s = toReady();
    const preempt = (at: Date) =>
      handle(
        s,
        SessionPreempt,
        { sessionId: 'p1-1', vmName: 'vm-a', eventId: 'e1', at: at.toISOString() },
        later(40_000),
      );
    // Seen at +5 s, handled at +40 s (a backlog): paused at +5 s.
    expect(of(preempt(later(5_000)), BillingMeterPause)[0]!.at).toBe(later(5_000).toISOString());
    // A time in the future: now. Before the rig was ready (a wrong clock): when it was ready.
    expect(of(preempt(later(99_000)), BillingMeterPause)[0]!.at).toBe(later(40_000).toISOString());
    expect(of(preempt(later(-3_600_000)), BillingMeterPause)[0]!.at).toBe(s.readyAt);
  });

  it('treats lost heartbeats as an eviction, billing paused at the last heartbeat', () => {
    const s = toReady();
    const r = heartbeatsLost(s, 90_000, 91_000);
    expect(r.state.phase).toBe('resuming');
    expect(of(r, BillingMeterPause)[0]!.at).toBe(s.lastHeartbeatAt);
    // Nobody announced anything: the player is not told Azure reclaimed it.
    expect(texts(r)).toEqual([
      'Your rig stopped responding. Your disk is safe and you are not charged while I find you another one…',
    ]);
  });

  it('bills a lost rig to its latest heartbeat, though an earlier one was handled after it', () => {
    let s = toReady();
    const beat = (ms: number): Omit<MessageOf<typeof SessionHeartbeat>, 'type'> => ({
      sessionId: 'p1-1',
      vmName: 'vm-a',
      at: later(ms).toISOString(),
    });
    s = handle(s, SessionHeartbeat, beat(60_000), later(60_000)).state;
    // Sent before the one above (and before ready), handled after it.
    s = handle(s, SessionHeartbeat, beat(-5_000), later(61_000)).state;
    expect(s.lastHeartbeatAt).toBe(later(60_000).toISOString());
    const lost = heartbeatsLost(s, 150_000, 150_000);
    expect(of(lost, BillingMeterPause).map((p) => p.at)).toEqual([later(60_000).toISOString()]);
  });

  it('pauses no meter again when the VM booting after an eviction is evicted too', () => {
    let s = toReady();
    const evict = (vmName: string, ms: number) =>
      handle(
        s,
        SessionPreempt,
        { sessionId: 'p1-1', vmName, eventId: `ev-${vmName}`, at: later(ms).toISOString() },
        later(ms),
      );
    const first = evict('vm-a', 60_000);
    expect(of(first, BillingMeterPause)).toHaveLength(1);
    s = handle(first.state, SessionAllocated, { ...spotAllocated, vmName: 'vm-b' }).state;
    expect(s.phase).toBe('provisioning');
    // The meter is paused already: billing is told nothing, and the rig is found again.
    const second = evict('vm-b', 90_000);
    expect(second.state.phase).toBe('resuming');
    expect(of(second, BillingMeterPause)).toEqual([]);
    expect(of(second, AllocRequest)).toHaveLength(1);
  });

  it('resumes when the reconciler finds its VM gone from Azure, billed up to the last heartbeat', () => {
    const s = toReady();
    // Another VM's release (an earlier allocation's) changes nothing.
    expect(handle(s, SessionVmReleased, { sessionId: 'p1-1', vmName: 'vm-old' }).state).toEqual(s);
    const r = handle(s, SessionVmReleased, { sessionId: 'p1-1', vmName: 'vm-a' }, later(600_000));
    expect(r.state.phase).toBe('resuming');
    expect(r.state.allocation).toBe(s.allocation + 1);
    expect(of(r, BillingMeterPause)[0]!.at).toBe(s.lastHeartbeatAt);
    expect(of(r, AllocRequest)).toHaveLength(1);
    expect(texts(r).join('\n')).toMatch(/disk is safe/i);
  });

  it('stops after too many evictions instead of resuming forever', () => {
    let s = toReady();
    for (let i = 0; i < 2; i++) {
      s = handle(s, SessionPreempt, {
        sessionId: 'p1-1',
        vmName: s.vmName!,
        eventId: `e${i}`,
      }).state;
      s = handle(s, SessionAllocated, { ...spotAllocated, vmName: `vm-r${i}` }).state;
      s = handle(s, SessionAgentReady, {
        sessionId: 'p1-1',
        vmName: `vm-r${i}`,
        host: 'h',
        port: 1,
        pin: '1234',
      }).state;
    }
    const r = handle(s, SessionPreempt, { sessionId: 'p1-1', vmName: s.vmName!, eventId: 'e9' });
    expect(r.state).toMatchObject({ phase: 'stopping', stopReason: 'eviction_unresumable' });
    // Heartbeats lost on the last VM: billed up to the last heartbeat, not to the timer.
    const lost = heartbeatsLost(s, 90_000, 91_000);
    expect(lost.state).toMatchObject({ phase: 'stopping', stopReason: 'eviction_unresumable' });
    expect(of(lost, BillingMeterClose)).toEqual([
      expect.objectContaining({ at: s.lastHeartbeatAt, reason: 'eviction_unresumable' }),
    ]);
  });

  it('stops with an old Stop button only the session it was under; says so when stopping already', () => {
    const ready = toReady();
    // The ready message's Stop button names its session.
    const readyMsg = handle(
      handle(admit(asking()).state, SessionAllocated, spotAllocated).state,
      SessionAgentReady,
      { sessionId: 'p1-1', vmName: 'vm-a', host: '10.0.0.4', port: 47989, pin: '1234' },
    );
    expect(of(readyMsg, TelegramSend)[0]!.buttons).toEqual([[{ text: 'Stop', data: 'stop:p1-1' }]]);
    // A button of an earlier session: nothing stops, the player is told.
    const old = handle(ready, SessionStop, {
      requestedBy: 'player',
      reason: 'player',
      sessionId: 'p1-0',
    });
    expect(old.state).toEqual(ready);
    expect(of(old, AllocRelease)).toEqual([]);
    expect(texts(old)).toEqual([
      'That session has ended already; nothing else was stopped. Send /stop to stop what runs now.',
    ]);
    // This session's button stops it.
    const own = handle(ready, SessionStop, {
      requestedBy: 'player',
      reason: 'player',
      sessionId: 'p1-1',
    });
    expect(own.state.phase).toBe('stopping');
    // Pressed again while it stops: told, nothing else.
    const again = handle(own.state, SessionStop, { requestedBy: 'player', reason: 'player' });
    expect(again.state).toEqual(own.state);
    expect(texts(again)).toEqual([
      'Your session is stopping already; I will tell you when it has.',
    ]);
    // A system's stop while stopping is not news to the player.
    const system = handle(own.state, SessionStop, {
      requestedBy: 'system',
      reason: 'idle_timeout',
    });
    expect(texts(system)).toEqual([]);
  });

  it('starts the next session the moment the last has stopped when Play is pressed while it stops', () => {
    const stopping = handle(toReady(), SessionStop, { requestedBy: 'player', reason: 'player' });
    const pressed = handle(stopping.state, SessionStart, { requestedBy: 'player', chatId: '42' });
    expect(pressed.state).toMatchObject({ phase: 'stopping', startNext: { chatId: '42' } });
    expect(texts(pressed)).toEqual([
      'Your last session is still stopping; your new one starts as soon as it has.',
    ]);
    expect(of(pressed, BillingAdmit)).toEqual([]);
    expect(texts(handle(pressed.state, SessionStatus, { requestedBy: 'player' }))).toEqual([
      'Stopping your session… your disk is kept. Your next one starts as soon as it has stopped.',
    ]);
    const released = handle(pressed.state, SessionVmReleased, { sessionId: 'p1-1' });
    // The last one is told as stopped, and the next one asks billing at once.
    expect(released.state).toMatchObject({ phase: 'starting', sessionId: 'p1-2', seq: 2 });
    expect(released.state.startNext).toBeUndefined();
    expect(texts(released)[0]).toMatch(/^Session stopped after/);
    expect(of(released, BillingAdmit)).toEqual([
      expect.objectContaining({ sessionId: 'p1-2', chatId: '42' }),
    ]);
    expect(of(released, SessionChanged).map((e) => e.phase)).toEqual(['idle', 'starting']);
    // No disk clean-up for a disk about to be used.
    expect(released.timers?.filter((t) => !('cancel' in t))).toEqual([]);
  });

  it('stays stopping while the allocator still holds a VM of the session or reports an older round', () => {
    // Evicted, resumed on round 2, stopped: round 1's VM may still be being deleted.
    let s = toReady();
    s = handle(s, SessionPreempt, {
      sessionId: 'p1-1',
      vmName: s.vmName!,
      eventId: 'ev-1',
      at: later(60_000).toISOString(),
    }).state;
    expect(s).toMatchObject({ phase: 'resuming', allocation: 2 });
    const stopping = handle(s, SessionStop, { requestedBy: 'player', reason: 'player' }).state;
    const pressed = handle(stopping, SessionStart, { requestedBy: 'player', chatId: '42' }).state;
    // Round 1's VM gone before round 2 was even placed: news of round 1, nothing held then.
    const old = { sessionId: 'p1-1', vmName: 'vm-a', allocation: 1, stillHeld: 0 };
    expect(handle(pressed, SessionVmReleased, old).state).toEqual(pressed);
    // Round 1's VM gone while round 2's is still being deleted.
    const first = { sessionId: 'p1-1', vmName: 'vm-a', allocation: 2, stillHeld: 1 };
    expect(handle(pressed, SessionVmReleased, first).state).toEqual(pressed);
    // The last one: the session ends, and the next one starts (its VM will find the disk free).
    const last = { sessionId: 'p1-1', vmName: 'vm-b', allocation: 2, stillHeld: 0 };
    const released = handle(pressed, SessionVmReleased, last);
    expect(of(released, SessionChanged).map((e) => e.phase)).toEqual(['idle', 'starting']);
  });

  it('starts the next session in the default region when the region asked is no longer served', () => {
    const served = sessionHandler({ ...defaultSessionConfig, regions: ['southindia'] });
    const stopping: SessionState = {
      ...toReady(),
      phase: 'stopping',
      meterOpen: false,
      diskState: 'none',
      startNext: { chatId: '42', region: 'westeurope' },
    };
    const released = served(stopping, SessionVmReleased, { sessionId: 'p1-1' });
    expect(released.state).toMatchObject({ phase: 'starting', region: 'centralindia' });
    // While stopping, a region not served is refused as it is from idle.
    expect(() =>
      served({ ...stopping, startNext: undefined }, SessionStart, {
        requestedBy: 'player',
        region: 'westeurope',
      }),
    ).toThrow(/region westeurope is not served here/);
  });

  it('forgets a Play pressed while stopping when Stop is pressed after it', () => {
    const stopping = handle(toReady(), SessionStop, { requestedBy: 'player', reason: 'player' });
    const pressed = handle(stopping.state, SessionStart, { requestedBy: 'player', chatId: '42' });
    const unpressed = handle(pressed.state, SessionStop, {
      requestedBy: 'player',
      reason: 'player',
    });
    expect(unpressed.state.phase).toBe('stopping');
    expect(unpressed.state.startNext).toBeUndefined();
    expect(texts(unpressed)).toEqual([
      'Your next session will not start after all. Press Play when you want one.',
    ]);
    const released = handle(unpressed.state, SessionVmReleased, { sessionId: 'p1-1' });
    expect(released.state.phase).toBe('idle');
    expect(of(released, BillingAdmit)).toEqual([]);
    // Billing's out-of-credit stop forgets it too, and still closes the meters it names.
    const broke = handle(pressed.state, SessionStop, {
      requestedBy: 'system',
      reason: 'out_of_credit',
      meteredSessionIds: ['p1-0'],
    });
    expect(broke.state.startNext).toBeUndefined();
    expect(texts(broke)).toEqual([]);
    expect(of(broke, BillingMeterClose)).toEqual([
      expect.objectContaining({ sessionId: 'p1-0', reason: 'not_running' }),
    ]);
  });

  it('stops on idle timeout: closes the meter, releases the VM, then reports the session on release', () => {
    const s = toReady();
    const r = handle(
      s,
      TimerFired,
      {
        timerId: '2',
        name: 'idle_stop',
        dueAt: later(900_000).toISOString(),
        firedAt: later(900_000).toISOString(),
        data: { sessionId: 'p1-1' },
      },
      later(900_000),
    );
    expect(r.state).toMatchObject({ phase: 'stopping', meterOpen: false });
    expect(of(r, BillingMeterClose)).toEqual([
      expect.objectContaining({ reason: 'idle_timeout', at: later(900_000).toISOString() }),
    ]);
    expect(of(r, AllocRelease)).toHaveLength(1);
    expect(r.timers?.every((t) => 'cancel' in t)).toBe(true);
    const done = handle(
      r.state,
      SessionVmReleased,
      { sessionId: 'p1-1', vmName: 'vm-a' },
      later(960_000),
    );
    expect(done.state).toMatchObject({ phase: 'idle', seq: 1 });
    // The time played (and billed), ready to the stop: not the minute the VM took to go.
    expect(texts(done)[0]).toMatch(/stopped after 15 minutes: no input for a while\./);
  });

  it('ignores allocator replies for a session that moved on', () => {
    // Session p1-1 waits for the allocator; a late reply about the player's earlier p1-0
    // (allocated or queued) changes nothing and tells the player nothing.
    const s = toStarting();
    expect(s).toMatchObject({ phase: 'starting', sessionId: 'p1-1' });
    const allocated = handle(s, SessionAllocated, {
      ...spotAllocated,
      sessionId: 'p1-0',
      vmName: 'vm-old',
    });
    expect(allocated.state).toEqual(s);
    // …except that the VM is given back: nobody would ever release it otherwise.
    expect(of(allocated, AllocRelease)).toEqual([
      { type: AllocRelease.type, sessionId: 'p1-0', playerId: 'p1', reason: 'stale_allocation' },
    ]);
    expect(subjects(allocated, AllocRelease)).toEqual([
      `respawn.alloc.${spotAllocated.region}.cmd.release`,
    ]);
    expect(allocated.emit).toHaveLength(1);
    const queued = handle(s, SessionQueued, {
      sessionId: 'p1-0',
      position: 3,
      estimateSeconds: 900,
    });
    expect(queued.state).toEqual(s);
    expect(queued.emit ?? []).toEqual([]);
    // The same replies for p1-1 itself are taken.
    expect(
      handle(s, SessionQueued, { sessionId: 'p1-1', position: 3, estimateSeconds: 900 }).state,
    ).toMatchObject({ phase: 'queued' });
  });

  it('gives back a VM allocated after its session ended (the stop reached the allocator first)', () => {
    // Stopped while starting; the allocator saw the release before the request, confirmed it,
    // and then served the request.
    let s = toStarting();
    s = handle(s, SessionStop, { requestedBy: 'player', reason: 'player' }).state;
    s = handle(s, SessionVmReleased, { sessionId: 'p1-1' }).state;
    expect(s.phase).toBe('idle');
    const r = handle(s, SessionAllocated, spotAllocated);
    expect(r.state).toEqual(s);
    expect(of(r, AllocRelease)).toEqual([
      expect.objectContaining({ sessionId: 'p1-1', reason: 'stale_allocation' }),
    ]);
    expect(texts(r)).toEqual([]);
    // While the session runs, a repeated reply changes nothing and gives nothing back.
    const provisioning = handle(toStarting(), SessionAllocated, spotAllocated).state;
    const again = handle(provisioning, SessionAllocated, spotAllocated);
    expect(again.state).toEqual(provisioning);
    expect(again.emit ?? []).toEqual([]);
  });

  it('answers the reconciler’s vm_check: its own running VM kept, any other given back', () => {
    const s = toReady();
    const own = handle(s, SessionVmCheck, {
      sessionId: 'p1-1',
      vmName: s.vmName!,
      region: 'centralindia',
    });
    expect(own.state).toEqual(s);
    expect(own.emit ?? []).toEqual([]);
    // An earlier session's VM still running, and a session whose record is gone (a new,
    // idle state): released, nothing else changes.
    for (const [state, sessionId] of [
      [s, 'p1-0'],
      [initialSessionState(), 'p1-7'],
    ] as const) {
      const r = handle(state, SessionVmCheck, { sessionId, vmName: 'vm-x', region: 'southindia' });
      expect(r.state).toEqual(state);
      expect(of(r, AllocRelease)).toEqual([
        { type: AllocRelease.type, sessionId, playerId: 'p1', reason: 'not_owned' },
      ]);
      expect(subjects(r, AllocRelease)).toEqual(['respawn.alloc.southindia.cmd.release']);
      expect(r.emit).toHaveLength(1);
    }
  });

  it('gives up a start the allocator never answers, the player told; an answered one goes on', () => {
    const admitted = admit(asking());
    const wait = admitted.timers?.find((t) => t.name === 'alloc_wait');
    expect(wait).toMatchObject({ at: later(defaultSessionConfig.provisionTimeoutMs) });
    const fire = (state: SessionState, allocation = 1) =>
      handle(
        state,
        TimerFired,
        {
          timerId: '7',
          name: 'alloc_wait',
          dueAt: later(defaultSessionConfig.provisionTimeoutMs).toISOString(),
          firedAt: later(defaultSessionConfig.provisionTimeoutMs).toISOString(),
          data: { sessionId: 'p1-1', allocation },
        },
        later(defaultSessionConfig.provisionTimeoutMs),
      );
    const silent = fire(admitted.state);
    expect(silent.state).toMatchObject({ phase: 'stopping', stopReason: 'allocation_failed' });
    expect(of(silent, AllocRelease)).toHaveLength(1);
    expect(texts(silent)).toEqual([
      'Could not start your rig: the cloud did not answer in time. You were not charged.',
    ]);
    // In line, or booting: the allocator answered; the timer changes nothing.
    const queued = handle(admitted.state, SessionQueued, {
      sessionId: 'p1-1',
      position: 4,
      estimateSeconds: 1_200,
    }).state;
    expect(fire(queued).state).toEqual(queued);
    const booting = handle(admitted.state, SessionAllocated, spotAllocated).state;
    expect(fire(booting).state).toEqual(booting);
    // A resume asks the allocator again, with its own wait.
    const resumed = handle(toReady(), SessionPreempt, {
      sessionId: 'p1-1',
      vmName: 'vm-a',
      eventId: 'e1',
    });
    expect(resumed.timers?.filter((t) => t.name === 'alloc_wait' && !('cancel' in t))).toEqual([
      expect.objectContaining({ data: { sessionId: 'p1-1', allocation: 2 } }),
    ]);
    expect(fire(resumed.state, 1).state).toEqual(resumed.state);
  });

  it('gives up a rig that never boots as a failed start: news, not charged, no "stopped" after', () => {
    const booting = handle(admit(asking()).state, SessionAllocated, spotAllocated);
    const fired = handle(
      booting.state,
      TimerFired,
      {
        timerId: '8',
        name: 'provision_timeout',
        dueAt: later(defaultSessionConfig.provisionTimeoutMs).toISOString(),
        firedAt: later(defaultSessionConfig.provisionTimeoutMs).toISOString(),
        data: { sessionId: 'p1-1' },
      },
      later(defaultSessionConfig.provisionTimeoutMs),
    );
    expect(fired.state).toMatchObject({ phase: 'stopping', stopReason: 'provision_timeout' });
    expect(of(fired, AllocRelease)).toEqual([
      expect.objectContaining({ sessionId: 'p1-1', reason: 'provision_timeout' }),
    ]);
    // A new message (it notifies), not an edit of "Got a Spot GPU rig… Booting…".
    expect(of(fired, TelegramSend)).toEqual([
      expect.objectContaining({
        text: 'Could not start your rig: the rig took too long to boot. You were not charged.',
      }),
    ]);
    expect(of(fired, TelegramSend)[0]).toMatchObject({ editKey: 'alloc:p1-1:1', fresh: true });
    const idle = handle(fired.state, SessionVmReleased, { sessionId: 'p1-1' });
    expect(idle.state.phase).toBe('idle');
    expect(texts(idle)).toEqual([]);
  });

  it('tells a place in line as news after a rig was promised, and why the player waits', () => {
    const admitted = admit(asking());
    // From starting: the "Starting…" message becomes the place in line (an edit).
    const fromStart = handle(admitted.state, SessionQueued, {
      sessionId: 'p1-1',
      position: 2,
      estimateSeconds: 600,
    });
    expect(of(fromStart, TelegramSend)[0]).toMatchObject({
      text: 'All GPUs are busy. You are number 2 in line (about 10 min).',
      editKey: 'alloc:p1-1:1',
    });
    // Booting, then every candidate failed: the player read "Booting…"; this one notifies.
    const booting = handle(admitted.state, SessionAllocated, spotAllocated).state;
    const fromBoot = handle(booting, SessionQueued, {
      sessionId: 'p1-1',
      position: 1,
      estimateSeconds: 120,
    });
    expect(fromBoot.state.phase).toBe('queued');
    expect(of(fromBoot, TelegramSend)).toHaveLength(1);
    expect(of(fromBoot, TelegramSend)[0]).toMatchObject({ editKey: 'alloc:p1-1:1', fresh: true });
    // Served from the line: news too (the player may have left the chat meanwhile).
    const served = handle(fromBoot.state, SessionAllocated, { ...spotAllocated, vmName: 'vm-c' });
    expect(of(served, TelegramSend)[0]).toMatchObject({ editKey: 'alloc:p1-1:1', fresh: true });
    expect(texts(served)[0]).toMatch(/^Got a Spot GPU rig/);
    expect(of(fromStart, TelegramSend)[0]!.fresh).toBeUndefined();
    // Spot only by choice: not "all GPUs are busy", and how to change it.
    const spotOnly = handle({ ...admitted.state, spotOnly: true }, SessionQueued, {
      sessionId: 'p1-1',
      position: 3,
      estimateSeconds: 900,
    });
    expect(texts(spotOnly)).toEqual([
      'No Spot GPU is free, and you chose Spot only (/tier to allow On-Demand). You are number 3 in line (about 15 min).',
    ]);
  });

  it('ignores timers of an earlier session', () => {
    const s = toReady();
    const r = handle(s, TimerFired, {
      timerId: '3',
      name: 'idle_stop',
      dueAt: T0.toISOString(),
      firedAt: T0.toISOString(),
      data: { sessionId: 'p1-0' },
    });
    expect(r.state).toEqual(s);
  });

  it('says so when asked to stop with nothing running', () => {
    const r = handle(initialSessionState(), SessionStop, {
      requestedBy: 'player',
      reason: 'player',
    });
    expect(r.state.phase).toBe('idle');
    expect(of(r, AllocRelease)).toEqual([]);
  });

  it('closes the meters billing names in its out-of-credit stop that outlived their session', () => {
    let s = toReady();
    s = handle(s, SessionStop, { requestedBy: 'player', reason: 'player' }, later(60_000)).state;
    s = handle(s, SessionVmReleased, { sessionId: 'p1-1' }, later(90_000)).state;
    expect(s.phase).toBe('idle');
    // Billing still meters p1-1 (its close was lost) and an older p1-0 (a late open).
    const r = handle(
      s,
      SessionStop,
      { requestedBy: 'system', reason: 'out_of_credit', meteredSessionIds: ['p1-1', 'p1-0'] },
      later(600_000),
    );
    expect(r.state).toEqual(s);
    expect(of(r, BillingMeterClose)).toEqual([
      expect.objectContaining({ sessionId: 'p1-1', at: later(90_000).toISOString() }),
      expect.objectContaining({ sessionId: 'p1-0', at: later(90_000).toISOString() }),
    ]);
    // Not the player's question: no "nothing is running".
    expect(texts(r)).toEqual([]);
    // While a session runs, its own meter closes with its stop, a stray one beside it.
    const running = handle(toReady(), SessionStop, {
      requestedBy: 'system',
      reason: 'out_of_credit',
      meteredSessionIds: ['p1-1', 'p1-0'],
    });
    expect(running.state.phase).toBe('stopping');
    expect(of(running, BillingMeterClose).map((c) => [c.sessionId, c.reason, c.at])).toEqual([
      ['p1-1', 'out_of_credit', T0.toISOString()],
      ['p1-0', 'not_running', running.state.startedAt],
    ]);
  });

  it('answers /status truthfully in every phase', () => {
    const s = toReady();
    const r = handle(s, SessionStatus, { requestedBy: 'player', chatId: '42' });
    expect(texts(r)[0]).toMatch(/Running: Spot at ₹30\.00\/hour/);
    // A newer answer queued for the chat replaces this one if it has not gone out yet.
    expect(of(r, TelegramSend)[0]?.collapseKey).toBe('status');
    expect(of(r, SessionChanged)[0]).toMatchObject({ phase: 'ready' });
    expect(
      texts(
        handle(initialSessionState(), SessionStatus, { requestedBy: 'player', chatId: '42' }),
      )[0],
    ).toMatch(/No session/);
  });
});

describe('the player’s disk', () => {
  it('warns, then archives an unused disk; a start cancels that; the archive is restored on the next play', () => {
    const cfg = {
      ...defaultSessionConfig,
      diskIdleMs: 10 * 86_400_000,
      diskWarningMs: 2 * 86_400_000,
    };
    const run = sessionHandler(cfg);
    let s = toReady();
    s = run(s, SessionStop, { requestedBy: 'player', reason: 'player' }).state;
    const idle = run(s, SessionVmReleased, { sessionId: 'p1-1' });
    expect(idle.timers).toEqual([
      { name: 'disk_warn', at: later(8 * 86_400_000) },
      { name: 'disk_archive', at: later(10 * 86_400_000) },
    ]);
    s = idle.state;
    const fire = (name: string): HandlerResult<SessionState> =>
      run(s, TimerFired, {
        timerId: '9',
        name,
        dueAt: T0.toISOString(),
        firedAt: T0.toISOString(),
      });
    expect(texts(fire('disk_warn'))[0]).toContain('archived in 2 days');
    expect(of(fire('disk_archive'), AzureArchiveDisk)).toEqual([
      {
        type: 'azure.archive_disk.v1',
        playerId: 'p1',
        diskName: 'disk-p1',
        snapshotName: 'snap-disk-p1',
      },
    ]);
    const restart = run(s, SessionStart, { requestedBy: 'player', chatId: '42' });
    expect(restart.timers).toEqual([
      { name: 'disk_warn', cancel: true },
      { name: 'disk_archive', cancel: true },
    ]);
    const archived = run(s, SessionDiskArchived, {
      diskName: 'disk-p1',
      snapshotName: 'snap-disk-p1',
      ok: true,
    });
    expect(archived.state.diskState).toBe('archived');
    expect(texts(archived)[0]).toContain('snapshot');
    const back = run(archived.state, SessionStart, { requestedBy: 'player', chatId: '42' });
    expect(texts(admit(back.state))).toEqual([
      expect.stringContaining('Starting'),
      expect.stringContaining('Restoring your disk'),
    ]);
    // A disk still in use is not archived: the state stays live, and it is tried again in an
    // hour (the player still away), said in the log.
    const refused = run(s, SessionDiskArchived, {
      diskName: 'disk-p1',
      snapshotName: 's',
      ok: false,
      reason: 'in use',
    });
    expect(refused.state.diskState).toBe('live');
    expect(refused.timers).toEqual([{ name: 'disk_archive', at: later(3_600_000) }]);
    expect(refused.ignored).toBe('disk not archived: in use; tried again in an hour');
    expect(texts(refused)).toEqual([]);
  });
});

describe('disk repairs from the reconciler', () => {
  /** Played once and stopped: idle, the disk live in zone 1, its clean-up timers set. */
  function idleLive(): SessionState {
    let s = toReady();
    s = handle(s, SessionStop, { requestedBy: 'player', reason: 'player' }).state;
    s = handle(s, SessionVmReleased, { sessionId: 'p1-1' }).state;
    return { ...s, diskZone: '1' };
  }
  const cancelled = [
    { name: 'disk_warn', cancel: true },
    { name: 'disk_archive', cancel: true },
  ];
  /** The allocation the next start asks for (after billing's admission). */
  function nextRequest(s: SessionState) {
    const started = handle(s, SessionStart, { requestedBy: 'player' }).state;
    const admitted = handle(started, SessionAdmission, {
      sessionId: started.sessionId ?? '',
      allowed: true,
      balancePaise: 50_000,
      requiredPaise: 1_500,
    });
    return of(admitted, AllocRequest)[0];
  }

  it('a live disk gone with its archive left: archived, restored (and said so) on the next start', () => {
    const s = idleLive();
    expect(s).toMatchObject({ phase: 'idle', diskState: 'live', seq: 1 });
    const r = handle(s, SessionDiskMissing, {
      diskName: 'disk-p1',
      seq: 1,
      snapshotName: 'snap-disk-p1',
    });
    expect(r.state).toMatchObject({ phase: 'idle', diskState: 'archived' });
    expect(r.state.diskZone).toBeUndefined();
    expect(r.timers).toEqual(cancelled);
    expect(texts(r)).toEqual([]);
    const back = handle(r.state, SessionStart, { requestedBy: 'player' });
    expect(texts(admit({ ...back.state, chatId: '42' }))).toContainEqual(
      expect.stringContaining('Restoring your disk'),
    );
  });

  it('a live disk gone with no archive: none, the player told once, the next start asks for no zone', () => {
    const r = handle(idleLive(), SessionDiskMissing, { diskName: 'disk-p1', seq: 1 });
    expect(r.state).toMatchObject({ phase: 'idle', diskState: 'none' });
    expect(r.timers).toEqual(cancelled);
    expect(texts(r)).toEqual([expect.stringMatching(/disk was lost.*fresh disk/)]);
    expect(subjects(r, TelegramSend)).toEqual(['respawn.out.telegram.42']);
    const again = handle(r.state, SessionDiskMissing, { diskName: 'disk-p1', seq: 1 });
    expect(again.state).toBe(r.state);
    expect(again.emit ?? []).toEqual([]);
    expect(nextRequest(idleLive())?.diskZone).toBe('1');
    expect(nextRequest(r.state)).toMatchObject({ playerId: 'p1', allocation: 1 });
    expect(nextRequest(r.state)?.diskZone).toBeUndefined();
  });

  it('an archive gone too: none; an archive still there: nothing to repair', () => {
    const archived: SessionState = { ...idleLive(), diskState: 'archived' };
    expect(
      handle(archived, SessionDiskMissing, { diskName: 'disk-p1', seq: 1 }).state.diskState,
    ).toBe('none');
    const kept = handle(archived, SessionDiskMissing, {
      diskName: 'disk-p1',
      seq: 1,
      snapshotName: 'snap-disk-p1',
    });
    expect(kept.state).toBe(archived);
  });

  it('adopts a disk the state does not record: live in its zone, clean-up timers set', () => {
    const cfg = { ...defaultSessionConfig, diskIdleMs: 10 * 86_400_000, diskWarningMs: 86_400_000 };
    const a = createSessionActor(cfg);
    const s: SessionState = { ...initialSessionState(), seq: 2, chatId: '42' };
    const r = a.handle(
      s,
      SessionDiskFound.decode(
        SessionDiskFound.encode({ diskName: 'disk-p1', seq: 2, region: 'centralindia', zone: '2' }),
      ),
      { kind: 'session', key: P, now: T0, msgId: 'm', subject: 's', redeliveries: 0 },
    );
    expect(r.state).toMatchObject({ diskState: 'live', diskZone: '2', region: 'centralindia' });
    expect(r.timers).toEqual([
      { name: 'disk_warn', at: later(9 * 86_400_000) },
      { name: 'disk_archive', at: later(10 * 86_400_000) },
    ]);
    expect(r.emit ?? []).toEqual([]);
    // The next start asks for a VM in the disk's zone, and does not speak of restoring.
    expect(nextRequest(r.state)?.diskZone).toBe('2');
    const start = handle(r.state, SessionStart, { requestedBy: 'player' });
    expect(texts(start)).not.toContainEqual(expect.stringContaining('Restoring'));
  });

  it('changes nothing while a session runs, after a newer session, or for another disk', () => {
    const ready = toReady();
    const missing = { diskName: 'disk-p1', seq: ready.seq };
    const found = { diskName: 'disk-p1', seq: ready.seq, region: 'centralindia', zone: '3' };
    for (const s of [ready, { ...ready, phase: 'playing' as const }]) {
      expect(handle(s, SessionDiskMissing, missing).state).toBe(s);
      expect(handle({ ...s, diskState: 'none' }, SessionDiskFound, found).state.diskState).toBe(
        'none',
      );
    }
    const idle = idleLive();
    expect(handle(idle, SessionDiskMissing, { diskName: 'disk-p1', seq: 0 }).state).toBe(idle);
    expect(handle(idle, SessionDiskMissing, { diskName: 'disk-p2', seq: 1 }).state).toBe(idle);
    const none: SessionState = { ...idle, diskState: 'none' };
    expect(handle(none, SessionDiskFound, { ...found, seq: 0 }).state).toBe(none);
    expect(handle(idle, SessionDiskFound, found).state).toBe(idle);
  });
});

describe('the player’s tier policy', () => {
  it('keeps to Spot a session whose balance covers the minimum at Spot but not On-Demand', () => {
    const started = handle(initialSessionState(), SessionStart, {
      requestedBy: 'player',
      chatId: '42',
    });
    // Billing's minimum is 15 minutes at ₹30/h (₹7.50); On-Demand (₹90/h) would need ₹22.50.
    const poor = handle(started.state, SessionAdmission, {
      sessionId: 'p1-1',
      allowed: true,
      balancePaise: 1_000,
      requiredPaise: 750,
    });
    expect(poor.state.spotOnlyForBalance).toBe(true);
    expect(of(poor, AllocRequest)[0]).toMatchObject({ spotOnly: true });
    const queued = handle(poor.state, SessionQueued, {
      sessionId: 'p1-1',
      position: 2,
      estimateSeconds: 600,
    });
    expect(texts(queued)[0]).toMatch(/your balance covers Spot only.*Top up to allow On-Demand/);
    // Enough for On-Demand too: the player's own policy (Spot, else On-Demand) stands.
    const rich = handle(started.state, SessionAdmission, {
      sessionId: 'p1-1',
      allowed: true,
      balancePaise: 2_250,
      requiredPaise: 750,
    });
    expect(rich.state.spotOnlyForBalance).toBeUndefined();
    expect(of(rich, AllocRequest)[0]!.spotOnly).toBeUndefined();
  });

  it('tells it with buttons, sets it, keeps it across sessions, and asks the allocator so', () => {
    const shown = handle(initialSessionState(), SessionSettings, {
      requestedBy: 'player',
      chatId: '42',
    });
    expect(texts(shown)).toEqual([expect.stringMatching(/^You take a Spot rig when one is free/)]);
    expect(of(shown, TelegramSend)[0]!.buttons).toEqual([
      [
        { text: 'Spot only', data: 'tier:spot' },
        { text: 'Spot, else On-Demand', data: 'tier:any' },
      ],
    ]);
    const set = handle(initialSessionState(), SessionSettings, {
      requestedBy: 'player',
      chatId: '42',
      spotOnly: true,
    });
    expect(set.state.spotOnly).toBe(true);
    expect(texts(set)).toEqual([
      'Spot only from now on: when no Spot GPU is free you wait in line.',
    ]);
    // A session started now asks for Spot only, and so does its resume after an eviction.
    const started = handle(set.state, SessionStart, { requestedBy: 'player', chatId: '42' });
    const admitted = admit(started.state);
    expect(of(admitted, AllocRequest)[0]).toMatchObject({ spotOnly: true, allocation: 1 });
    let s = handle(admitted.state, SessionAllocated, spotAllocated).state;
    s = handle(s, SessionAgentReady, {
      sessionId: 'p1-1',
      vmName: 'vm-a',
      host: 'h',
      port: 1,
      pin: '1234',
    }).state;
    const evicted = handle(s, SessionPreempt, { sessionId: 'p1-1', vmName: 'vm-a', eventId: 'e' });
    expect(of(evicted, AllocRequest)[0]).toMatchObject({ spotOnly: true, allocation: 2 });
    // Kept when the session ends, and back to any tier when the player says so.
    const stopping = handle(evicted.state, SessionStop, {
      requestedBy: 'player',
      reason: 'player',
    });
    const idle = handle(stopping.state, SessionVmReleased, { sessionId: 'p1-1' }).state;
    expect(idle).toMatchObject({ phase: 'idle', spotOnly: true });
    const any = handle(idle, SessionSettings, { requestedBy: 'player', spotOnly: false });
    const again = admit(handle(any.state, SessionStart, { requestedBy: 'player' }).state);
    expect(of(again, AllocRequest)[0]!.spotOnly).toBeUndefined();
  });
});

describe('the order of a player’s own inputs', () => {
  const play = (inputSeq?: number) => ({
    requestedBy: 'player',
    chatId: '42',
    ...(inputSeq === undefined ? {} : { inputSeq }),
  });
  const stopIt = (inputSeq: number) => ({ requestedBy: 'player', reason: 'player', inputSeq });

  it('ignores a Play older than a Stop applied just before (two routers raced), not a later one', () => {
    const stopFirst = handle(initialSessionState(), SessionStop, stopIt(11));
    expect(stopFirst.state.lastInput).toEqual({ seq: 11, at: T0.toISOString() });
    const stale = handle(stopFirst.state, SessionStart, play(10), later(300));
    expect(stale.state).toEqual(stopFirst.state);
    expect(stale.emit ?? []).toEqual([]);
    // A later input, and a start from another service (no inputSeq), apply.
    expect(handle(stopFirst.state, SessionStart, play(12), later(300)).state.phase).toBe(
      'starting',
    );
    expect(handle(stopFirst.state, SessionStart, play(), later(300)).state.phase).toBe('starting');
    // Telegram numbers a bot's updates at random after a quiet week: past the window, a
    // lower update_id is a new input, not a stale one.
    expect(
      handle(stopFirst.state, SessionStart, play(10), later(INPUT_ORDER_WINDOW_MS)).state.phase,
    ).toBe('starting');
  });

  it('ignores a Stop older than the Play that started the session', () => {
    const started = handle(initialSessionState(), SessionStart, play(21));
    expect(started.state.lastInput).toEqual({ seq: 21, at: T0.toISOString() });
    const stale = handle(started.state, SessionStop, stopIt(20), later(200));
    expect(stale.state).toEqual(started.state);
    expect(handle(started.state, SessionStop, stopIt(22), later(200)).state.phase).toBe('stopping');
  });
});
