/**
 * The session actor under random sequences of the messages it takes: the player's inputs,
 * billing's and the allocator's answers (for this session, an earlier one, or one not yet
 * started), the agent's reports, the player's tier setting, the disk reconciler's findings,
 * and the timers the actor itself set, fired in any order.
 * Whatever the order, after every message:
 *
 * - the handler returned (a throw is a message offered again and again) and its state is one
 *   the runtime can store (the actor's own schema);
 * - a change of phase came with its event (`evt.changed` naming the new phase), and a session
 *   that ended told the player (as it ended, or as it began to stop);
 * - a player on a rig (ready, playing) is charged, and one whose rig was taken away (evicted,
 *   resuming) is not;
 * - a session that is idle has no meter still charging the player (every meter it opened was
 *   closed), and no VM still held for it (every session the allocator gave a VM to was
 *   released after that);
 * - every message it emitted is one its contract accepts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AllocRelease,
  AllocRequest,
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  SessionAdmission,
  SessionAgentReady,
  SessionAllocFailed,
  SessionAllocated,
  SessionChanged,
  SessionDiskArchived,
  SessionDiskFound,
  SessionDiskMissing,
  SessionHeartbeat,
  SessionPreempt,
  SessionQueued,
  SessionSettings,
  SessionStart,
  SessionStatus,
  SessionStop,
  SessionVmCheck,
  SessionVmReleased,
  TelegramSend,
  TerminalError,
  TimerFired,
  playerDiskName,
  type MessageDef,
} from '../../contracts/index.ts';
import type { HandlerResult } from '../runtime/index.ts';
import { defaultSessionConfig, SessionState, initialSessionState } from './state.ts';
import { decodeEmitted, messageSteps, SetTimers } from '../../test/support/property.ts';
import { P, T0, sessionHandler } from './testkit.ts';

const handle = sessionHandler({ ...defaultSessionConfig, maxResumes: 2 });
const REGION = defaultSessionConfig.region;
const DISK = playerDiskName(P);
const SESSIONS = ['p1-1', 'p1-2', 'p1-3'];
const VMS = ['vm-a', 'vm-b', 'vm-c'];

/** One step: a message other components might send now, or "fire a timer the actor set". */
type Step =
  | { kind: 'msg'; def: MessageDef; value: unknown; advanceMs: number }
  | { kind: 'timer'; pick: number; advanceMs: number };

/** Mostly the session (or VM) the actor has at that moment, else any of a few. */
const CURRENT = 'current';
const session = fc.oneof(
  { arbitrary: fc.constant(CURRENT), weight: 4 },
  { arbitrary: fc.constantFrom(...SESSIONS), weight: 1 },
);
const vm = fc.oneof(
  { arbitrary: fc.constant(CURRENT), weight: 3 },
  { arbitrary: fc.constantFrom(...VMS), weight: 1 },
);
const advance = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1, max: 60_000 }),
  fc.integer({ min: 60_000, max: 30 * 60_000 }),
);
const msg = (def: MessageDef, value: fc.Arbitrary<unknown>, weight = 1) =>
  messageSteps(def, value, advance, weight);

const steps: fc.Arbitrary<Step> = fc.oneof(
  msg(
    SessionStart,
    fc.record({ requestedBy: fc.constantFrom('player', 'operator'), chatId: fc.constant('42') }),
    2,
  ),
  msg(
    SessionStop,
    fc.record({
      requestedBy: fc.constantFrom('player', 'system'),
      reason: fc.constantFrom('player', 'idle_timeout', 'out_of_credit', 'operator'),
    }),
  ),
  msg(SessionStatus, fc.constant({ requestedBy: 'player', chatId: '42' })),
  msg(
    SessionAdmission,
    fc.record({
      sessionId: session,
      allowed: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, fc.constant(false)),
      balancePaise: fc.constantFrom(0, 2_000, 50_000),
      requiredPaise: fc.constant(1_500),
    }),
    2,
  ),
  msg(
    SessionAllocated,
    fc.record({
      sessionId: session,
      region: fc.constant(REGION),
      tier: fc.constantFrom('spot', 'on_demand'),
      size: fc.constant('NC4'),
      pricePerHourPaise: fc.constantFrom(3_000, 9_000),
      vmName: vm,
    }),
    2,
  ),
  msg(
    SessionQueued,
    fc.record({
      sessionId: session,
      position: fc.integer({ min: 1, max: 5 }),
      estimateSeconds: fc.constant(60),
    }),
  ),
  msg(SessionAllocFailed, fc.record({ sessionId: session, reason: fc.constant('no capacity') })),
  msg(
    SessionAgentReady,
    fc.record({
      sessionId: session,
      vmName: vm,
      host: fc.constant('10.0.0.4'),
      port: fc.constant(47989),
      pin: fc.constant('1234'),
    }),
    2,
  ),
  msg(SessionHeartbeat, fc.record({ sessionId: session, vmName: vm, input: fc.boolean() }), 3),
  msg(SessionPreempt, fc.record({ sessionId: session, vmName: vm, eventId: fc.constant('ev-1') })),
  msg(SessionVmReleased, fc.record({ sessionId: session, vmName: vm })),
  msg(SessionVmCheck, fc.record({ sessionId: session, vmName: vm, region: fc.constant(REGION) })),
  msg(
    SessionSettings,
    fc.record({
      requestedBy: fc.constant('player'),
      chatId: fc.constant('42'),
      spotOnly: fc.boolean(),
    }),
  ),
  // The disk reconciler's findings and the archive's outcome, for this player's disk.
  msg(
    SessionDiskArchived,
    fc.record({
      diskName: fc.constant(DISK),
      snapshotName: fc.constant(`snap-${DISK}`),
      ok: fc.boolean(),
    }),
  ),
  msg(
    SessionDiskMissing,
    fc
      .record({
        diskName: fc.constant(DISK),
        seq: fc.integer({ min: 0, max: 3 }),
        snapshotName: fc.option(fc.constant(`snap-${DISK}`), { nil: undefined }),
      })
      .map(({ snapshotName, ...rest }) =>
        snapshotName === undefined ? rest : { ...rest, snapshotName },
      ),
  ),
  msg(
    SessionDiskFound,
    fc.record({
      diskName: fc.constant(DISK),
      seq: fc.integer({ min: 0, max: 3 }),
      region: fc.constant(REGION),
      zone: fc.constantFrom('1', '2'),
    }),
  ),
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('timer' as const),
      pick: fc.nat(),
      advanceMs: advance,
    }),
  },
);

interface World {
  state: SessionState;
  now: number;
  timers: SetTimers;
  /** Billing's view: each session's meter. */
  meters: Map<string, 'open' | 'paused' | 'closed'>;
  /**
   * Sessions that asked the allocator for a VM and did not give it back since: a release
   * names the session, and the allocator applies it to what it reserved for that session
   * before or after it (a release that overtakes its request is kept: docs/sessions.md).
   */
  held: Set<string>;
  log: string[];
  /** Whether the player was told anything when the session began to stop. */
  toldStopping: boolean;
}

/** Fills in what a step takes from the moment it is sent (the session, the VM, times). */
function valueAt(step: Extract<Step, { kind: 'msg' }>, w: World): unknown {
  const iso = new Date(w.now).toISOString();
  const v = { ...(step.value as Record<string, unknown>) };
  if (v.sessionId === CURRENT) v.sessionId = w.state.sessionId ?? SESSIONS[0];
  if (v.vmName === CURRENT) v.vmName = w.state.vmName ?? VMS[0];
  if (step.def === SessionHeartbeat) {
    const { input, ...rest } = v;
    return { ...rest, at: iso, ...(input === true ? { lastInputAt: iso } : {}) };
  }
  if (step.def === SessionPreempt) return { ...v, at: iso };
  return v;
}

function apply(w: World, r: HandlerResult<SessionState>): void {
  expect(() => SessionState.parse(r.state), 'a state the runtime can store').not.toThrow();
  w.state = r.state;
  w.timers.apply(r.timers);
  for (const e of r.emit ?? []) {
    const value = decodeEmitted(e) as { sessionId?: string };
    const id = value.sessionId ?? '';
    if (e.type === BillingMeterOpen.type) w.meters.set(id, 'open');
    if (e.type === BillingMeterPause.type && w.meters.get(id) === 'open')
      w.meters.set(id, 'paused');
    if (e.type === BillingMeterResume.type && w.meters.get(id) === 'paused')
      w.meters.set(id, 'open');
    if (e.type === BillingMeterClose.type) w.meters.set(id, 'closed');
    if (e.type === AllocRequest.type) w.held.add(id);
    if (e.type === AllocRelease.type) w.held.delete(id);
    w.log.push(`  → ${e.type} ${id}`);
  }
}

function check(w: World, before: SessionState, r: HandlerResult<SessionState>): void {
  const trail = `\n${w.log.join('\n')}`;
  const { phase, sessionId } = w.state;
  if (phase !== before.phase) {
    const told = (r.emit ?? []).some(
      (e) => e.type === SessionChanged.type && SessionChanged.decode(e.data).phase === phase,
    );
    expect(told, `${before.phase} → ${phase} without its event:${trail}`).toBe(true);
  }
  // A session that ends, however, says so to the player: at the end, or when it began to stop.
  const says = (r.emit ?? []).some((e) => e.type === TelegramSend.type);
  if (phase === 'stopping' && before.phase !== 'stopping') w.toldStopping = says;
  if (phase === 'idle' && before.phase !== 'idle') {
    const told = says || (before.phase === 'stopping' && w.toldStopping);
    expect(told, `${before.phase} → idle, the player told nothing:${trail}`).toBe(true);
  }
  const meter = sessionId === undefined ? undefined : w.meters.get(sessionId);
  if (phase === 'ready' || phase === 'playing') {
    expect(meter, `${phase}, yet the player is not charged:${trail}`).toBe('open');
  }
  if (phase === 'evicted' || phase === 'resuming') {
    expect(meter, `${phase}, yet the player is charged:${trail}`).not.toBe('open');
  }
  if (phase !== 'idle') return;
  const charging = [...w.meters].filter(([, m]) => m !== 'closed').map(([id]) => id);
  expect(charging, `idle, yet meters still charge:${trail}`).toEqual([]);
  expect([...w.held], `idle, yet VMs still held for:${trail}`).toEqual([]);
}

function run(seq: readonly Step[]): void {
  const w: World = {
    state: initialSessionState(),
    now: T0.getTime(),
    timers: new SetTimers(),
    meters: new Map(),
    held: new Set(),
    log: [],
    toldStopping: false,
  };
  for (const step of seq) {
    w.now += step.advanceMs;
    let def: MessageDef;
    let value: unknown;
    if (step.kind === 'timer') {
      const fired = w.timers.fire(step.pick, w.now);
      if (fired === undefined) continue;
      w.now = fired.at;
      def = TimerFired;
      value = fired.value;
    } else {
      def = step.def;
      value = valueAt(step, w);
    }
    w.log.push(`${w.state.phase}: ${def.type} ${JSON.stringify(value)}`);
    let r: HandlerResult<SessionState>;
    try {
      r = handle(w.state, def, value, new Date(w.now));
    } catch (err) {
      if (err instanceof TerminalError) continue;
      throw err;
    }
    const before = w.state;
    apply(w, r);
    check(w, before, r);
  }
}

describe('the session actor under random sequences of its messages', () => {
  it('stores a valid state, announces each phase, charges only on a rig, and leaves nothing held once idle', () => {
    fc.assert(
      fc.property(fc.array(steps, { minLength: 1, maxLength: 60, size: 'max' }), (seq) => run(seq)),
      { numRuns: 2_000 },
    );
  });
});
