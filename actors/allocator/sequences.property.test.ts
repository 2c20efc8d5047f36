/**
 * The allocator under random sequences of the messages it takes: requests (first ones and
 * resumes, Spot-only or not), releases, quota reports that move, Azure's answers to its creates
 * and deletes (ok, capacity, quota, throttled, transient), drains, and the timers it set, fired
 * in any order. Whatever the order, after every message:
 *
 * - the handler returned and its state is one the runtime can store (the actor's own schema);
 * - a VM it decided to create fits its quota (what Azure reports as the limit, less what others
 *   use and what it already holds): never an overrun;
 * - a session holds at most one VM that is not being deleted, and never while in line;
 * - a session that let go of a round (a release names it) holds nothing of that round or an
 *   earlier one that is not going, and does not wait in line for one;
 * - a Spot-only request is never given an On-Demand VM;
 * - every message it emitted is one its contract accepts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AllocCreateResult,
  AllocDeleteResult,
  AllocDrain,
  AllocRelease,
  AllocRequest,
  AllocUsage,
  AzureCreateVm,
  SessionAllocFailed,
  TimerFired,
  type MessageDef,
} from '../../contracts/index.ts';
import { decodeEmitted, messageSteps, SetTimers } from '../../test/support/property.ts';
import type { HandlerResult } from '../runtime/index.ts';
import { createAllocatorActor } from './actor.ts';
import { freeCores } from './place.ts';
import { AllocState, defaultAllocatorConfig, initialAllocState } from './state.ts';

const cfg = { ...defaultAllocatorConfig, coldMs: 600_000 };
const actor = createAllocatorActor(cfg);
const T0 = new Date('2026-03-01T18:00:00Z').getTime();
const SESSIONS = [1, 2, 3, 4, 5, 6];
const candidates = new Map(cfg.candidates.map((c) => [c.id, c]));
const QUOTAS = [...new Set(cfg.candidates.map((c) => c.quotaName))];

type Step =
  | { kind: 'msg'; def: MessageDef; value: unknown; advanceMs: number }
  | { kind: 'result'; of: 'create' | 'delete'; pick: number; error?: string; advanceMs: number }
  | { kind: 'timer'; pick: number; advanceMs: number };

const advance = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 15 * 60_000 }));
const player = fc.constantFrom(...SESSIONS);
const msg = (def: MessageDef, value: fc.Arbitrary<unknown>, weight = 1) =>
  messageSteps(def, value, advance, weight);
const ERRORS = ['capacity', 'quota', 'throttled', 'transient', 'not_found', 'other'];

const steps: fc.Arbitrary<Step> = fc.oneof(
  msg(
    AllocRequest,
    fc
      .record({
        n: player,
        allocation: fc.constantFrom(1, 1, 2),
        spotOnly: fc.boolean(),
      })
      .map(({ n, allocation, spotOnly }) => ({
        sessionId: `s${n}`,
        playerId: `p${n}`,
        allocation,
        ...(spotOnly ? { spotOnly: true } : {}),
      })),
    5,
  ),
  msg(
    AllocRelease,
    fc.record({ n: player, allocation: fc.constantFrom(1, 2) }).map(({ n, allocation }) => ({
      sessionId: `s${n}`,
      playerId: `p${n}`,
      reason: 'player',
      allocation,
    })),
    2,
  ),
  msg(
    AllocUsage,
    fc
      .array(
        fc.record({
          limit: fc.integer({ min: 0, max: 16 }),
          current: fc.integer({ min: 0, max: 8 }),
        }),
        {
          minLength: QUOTAS.length,
          maxLength: QUOTAS.length,
        },
      )
      .map((us) => ({ usages: us.map((u, i) => ({ name: QUOTAS[i]!, ...u })) })),
    2,
  ),
  msg(
    AllocDrain,
    fc.boolean().map((draining) => ({ draining, reason: 'maintenance' })),
    1,
  ),
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('result' as const),
      of: fc.constantFrom('create' as const, 'create' as const, 'delete' as const),
      pick: fc.nat(),
      error: fc.option(fc.constantFrom(...ERRORS), { nil: undefined }),
      advanceMs: advance,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('timer' as const),
      pick: fc.nat(),
      advanceMs: advance,
    }),
  },
);

interface World {
  state: AllocState;
  now: number;
  timers: SetTimers;
  /** Each round's Spot-only flag (`<session>#<round>`), as the request taken asked. */
  spotOnly: Map<string, boolean>;
  /** The round each session let go of last (a release names its round). */
  released: Map<string, number>;
  log: string[];
}

/** The message a step stands for, made from the world as it is now (the VMs it holds). */
function messageOf(step: Step, w: World): { def: MessageDef; value: unknown } | undefined {
  const iso = new Date(w.now).toISOString();
  if (step.kind === 'timer') {
    const fired = w.timers.fire(step.pick, w.now);
    if (fired === undefined) return undefined;
    w.now = fired.at;
    return { def: TimerFired, value: fired.value };
  }
  if (step.kind === 'result') {
    const wanted = step.of === 'create' ? 'creating' : 'deleting';
    const vms = Object.entries(w.state.reservations).filter(([, r]) => r.status === wanted);
    if (vms.length === 0) return undefined;
    const [vmName, r] = vms[step.pick % vms.length]!;
    const error =
      step.error === undefined
        ? {}
        : {
            error: {
              kind: step.error,
              code: step.error === 'capacity' ? 'AllocationFailed' : 'Err',
              message: step.error,
              ...(step.error === 'throttled' ? { retryAfterMs: 30_000 } : {}),
            },
          };
    return {
      def: step.of === 'create' ? AllocCreateResult : AllocDeleteResult,
      value: { sessionId: r.sessionId, vmName, ok: step.error === undefined, ...error },
    };
  }
  // A session never asks again for a round it let go of (its inbox drops a repeat of the
  // same message; a new start is a new session).
  if (step.def === AllocRequest) {
    const q = step.value as { sessionId: string; allocation: number };
    if (q.allocation <= (w.released.get(q.sessionId) ?? 0)) return undefined;
  }
  if (step.def === AllocUsage)
    return { def: AllocUsage, value: { ...(step.value as object), at: iso } };
  return { def: step.def, value: step.value };
}

function apply(w: World, def: MessageDef, value: unknown, r: HandlerResult<AllocState>): void {
  const trail = `\n${w.log.join('\n')}`;
  expect(() => AllocState.parse(r.state), 'a state the runtime can store').not.toThrow();
  const before = new Set(Object.keys(w.state.reservations));
  // A request taken (one already known, or of a round released, changes nothing and says so).
  if (def === AllocRequest && r.ignored === undefined && (r.emit ?? []).length > 0) {
    const q = value as { sessionId: string; allocation: number; spotOnly?: boolean };
    w.spotOnly.set(`${q.sessionId}#${q.allocation}`, q.spotOnly === true);
    w.released.delete(q.sessionId);
  }
  if (def === AllocRelease) {
    const v = value as { sessionId: string; allocation: number };
    w.released.set(v.sessionId, Math.max(w.released.get(v.sessionId) ?? 0, v.allocation));
  }
  w.state = r.state;
  w.timers.apply(r.timers);
  for (const e of r.emit ?? []) {
    const v = decodeEmitted(e) as { sessionId?: string; vmName?: string };
    w.log.push(`  → ${e.type} ${v.sessionId ?? ''} ${v.vmName ?? ''}`);
    // Refused: a request of the same round later is a new one, with its own flag.
    if (e.type === SessionAllocFailed.type) {
      for (const k of [...w.spotOnly.keys()])
        if (k.startsWith(`${v.sessionId}#`)) w.spotOnly.delete(k);
    }
    if (e.type !== AzureCreateVm.type || v.vmName === undefined || before.has(v.vmName)) continue;
    // A VM newly decided: it fits its quota.
    const res = w.state.reservations[v.vmName];
    expect(res, `created ${v.vmName} without holding it:${trail}`).toBeDefined();
    const free = freeCores(w.state, res!.quotaName);
    expect(free ?? -1, `${v.vmName} overruns ${res!.quotaName}:${trail}`).toBeGreaterThanOrEqual(0);
    if (w.spotOnly.get(`${res!.sessionId}#${res!.allocation}`) === true) {
      expect(candidates.get(res!.candidate)?.tier, `Spot-only got On-Demand:${trail}`).toBe('spot');
    }
  }
}

function check(w: World): void {
  const trail = `\n${w.log.join('\n')}`;
  // Held: not being deleted, nor marked to be once its create reports.
  const live = Object.values(w.state.reservations).filter(
    (r) => r.status !== 'deleting' && r.release !== true,
  );
  const queued = new Set(w.state.queue.map((q) => q.sessionId));
  const per = new Map<string, number>();
  for (const r of live) per.set(r.sessionId, (per.get(r.sessionId) ?? 0) + 1);
  for (const [sessionId, n] of per) {
    expect(n, `${sessionId} holds ${n} VMs:${trail}`).toBe(1);
    expect(queued.has(sessionId), `${sessionId} holds a VM and waits in line:${trail}`).toBe(false);
  }
  for (const [sessionId, round] of w.released) {
    const kept = live.filter((r) => r.sessionId === sessionId && r.allocation <= round);
    expect(kept, `${sessionId} let go of round ${round}, yet holds a VM of it:${trail}`).toEqual(
      [],
    );
    const waits = w.state.queue.some((q) => q.sessionId === sessionId && q.allocation <= round);
    expect(waits, `${sessionId} let go of round ${round}, yet waits in line:${trail}`).toBe(false);
  }
}

function run(seq: readonly Step[]): void {
  const w: World = {
    state: initialAllocState(),
    now: T0,
    timers: new SetTimers(),
    spotOnly: new Map(),
    released: new Map(),
    log: [],
  };
  for (const step of seq) {
    w.now += step.advanceMs;
    const m = messageOf(step, w);
    if (m === undefined) continue;
    w.log.push(`${m.def.type} ${JSON.stringify(m.value)}`);
    // The allocator changes the state it is given (mutatesState): it gets its own copy.
    const r = actor.handle(structuredClone(w.state), m.def.decode(m.def.encode(m.value)) as never, {
      kind: 'alloc',
      key: 'centralindia',
      now: new Date(w.now),
      msgId: 'm',
      subject: 'respawn.alloc.centralindia.cmd.x',
      redeliveries: 0,
    });
    apply(w, m.def, m.value, r);
    check(w);
  }
}

describe('the allocator under random sequences of its messages', () => {
  it('stores a valid state, never overruns a quota, and holds one VM per session at most', () => {
    fc.assert(
      fc.property(fc.array(steps, { minLength: 1, maxLength: 80, size: 'max' }), (seq) => run(seq)),
      { numRuns: 500 },
    );
  });
});
