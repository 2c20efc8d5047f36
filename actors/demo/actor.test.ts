import { describe, expect, it } from 'vitest';
import {
  DemoAdd,
  DemoAdded,
  DemoFail,
  DemoRemind,
  DemoReminded,
  ErrorCodes,
  RetryableError,
  TerminalError,
  TimerFired,
  type MessageDef,
} from '../../contracts/index.ts';
import type { HandlerContext, HandlerResult } from '../runtime/index.ts';
import { demoActor, type DemoState } from './actor.ts';

const NOW = new Date('2030-05-06T07:08:09.000Z');
const KEY = 'k-1';

function ctx(over: Partial<HandlerContext> = {}): HandlerContext {
  return {
    kind: 'demo',
    key: KEY,
    now: NOW,
    msgId: 'msg-1',
    subject: `respawn.demo.${KEY}.cmd.add.0`,
    redeliveries: 0,
    ...over,
  };
}

/** A message as the runtime hands it over: through the wire and the actor's own decode. */
function wire<T extends string, P>(def: MessageDef<T, P>, value: P) {
  return demoActor.decode(def.encode(value));
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

type Msg = Parameters<typeof demoActor.handle>[1];

/** Runs the handler on a deep-frozen copy of `state` and checks the state it returns. */
function handle(state: DemoState, msg: Msg, c: HandlerContext = ctx()): HandlerResult<DemoState> {
  const frozen = deepFreeze(structuredClone(state));
  const r = demoActor.handle(frozen, msg, c);
  expect(demoActor.state.safeParse(r.state).success).toBe(true);
  return r;
}

const initial = (): DemoState => demoActor.initial(KEY);

function addAll(ns: readonly number[], amount = 1): DemoState {
  let s = initial();
  for (const n of ns) s = handle(s, wire(DemoAdd, { n, amount })).state;
  return s;
}

describe('demo actor: add', () => {
  it('starts from an all-zero state', () => {
    expect(initial()).toEqual({
      total: 0,
      count: 0,
      lastN: 0,
      outOfOrder: 0,
      seen: [],
      reminders: 0,
    });
  });

  it('increments total, count, lastN and seen', () => {
    const r = handle(initial(), wire(DemoAdd, { n: 1, amount: 5 }));
    expect(r.state).toEqual({ ...initial(), total: 5, count: 1, lastN: 1, seen: [1] });
    const r2 = handle(r.state, wire(DemoAdd, { n: 2, amount: -2 }));
    expect(r2.state).toEqual({ ...initial(), total: 3, count: 2, lastN: 2, seen: [1, 2] });
  });

  it('adds 1 when amount is left to its default', () => {
    const r = handle(
      initial(),
      demoActor.decode(new TextEncoder().encode('{"type":"demo.add.v1","n":1}')),
    );
    expect(r.state.total).toBe(1);
  });

  it('emits one demo.added.v1 on respawn.demo.<key>.evt.added with the new total', () => {
    const before = addAll([1, 2], 10);
    const r = handle(before, wire(DemoAdd, { n: 3, amount: 4 }));
    expect(r.emit).toHaveLength(1);
    const e = r.emit![0]!;
    expect(e.subject).toBe(`respawn.demo.${KEY}.evt.added`);
    expect(e.type).toBe('demo.added.v1');
    expect(DemoAdded.decode(e.data)).toEqual({ type: 'demo.added.v1', key: KEY, n: 3, total: 24 });
    expect(r.timers ?? []).toEqual([]);
  });

  it('carries sentAt into the emission when given', () => {
    const r = handle(initial(), wire(DemoAdd, { n: 1, amount: 1, sentAt: 123.5 }));
    expect(DemoAdded.decode(r.emit![0]!.data).sentAt).toBe(123.5);
  });

  it('keeps outOfOrder at 0 while n runs 1, 2, 3, …', () => {
    expect(addAll([1, 2, 3, 4, 5]).outOfOrder).toBe(0);
  });

  it('increments outOfOrder for every n that is not lastN + 1', () => {
    // 3 skips 2; 2 goes back; 2 repeats; 3 follows 2 again (in order).
    const s = addAll([1, 3, 2, 2, 3]);
    expect(s.outOfOrder).toBe(3);
    expect(s.lastN).toBe(3);
    expect(s.count).toBe(5);
    expect(s.seen).toEqual([1, 3, 2, 2, 3]);
  });

  it('caps seen at the 200 newest n', () => {
    const ns = Array.from({ length: 250 }, (_, i) => i + 1);
    const s = addAll(ns);
    expect(s.seen).toHaveLength(200);
    expect(s.seen).toEqual(ns.slice(-200));
    expect(s.count).toBe(250);
    expect(s.outOfOrder).toBe(0);
  });
});

describe('demo actor: fail', () => {
  it('terminal mode throws a TerminalError with code rejected', () => {
    const run = (): unknown =>
      handle(initial(), wire(DemoFail, { mode: 'terminal', times: 1, n: 7 }));
    expect(run).toThrow(TerminalError);
    expect(run).toThrow(expect.objectContaining({ code: ErrorCodes.rejected, retryable: false }));
  });

  it('retryable mode throws a RetryableError while redeliveries < times', () => {
    const msg = wire(DemoFail, { mode: 'retryable', times: 3 });
    for (const redeliveries of [0, 1, 2]) {
      let thrown: unknown;
      try {
        handle(initial(), msg, ctx({ redeliveries }));
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(RetryableError);
      expect(thrown).toMatchObject({ code: ErrorCodes.unavailable, retryable: true, delayMs: 100 });
    }
  });

  it('retryable mode succeeds once redeliveries reach times, leaving the state alone', () => {
    const before = addAll([1, 2]);
    const r = handle(
      before,
      wire(DemoFail, { mode: 'retryable', times: 3 }),
      ctx({ redeliveries: 3 }),
    );
    expect(r.state).toEqual(before);
    expect(r.emit ?? []).toEqual([]);
    expect(r.timers ?? []).toEqual([]);
  });

  it('retryable mode with n records n as lastN and in seen once it succeeds', () => {
    const before = addAll([1, 2]);
    const r = handle(
      before,
      wire(DemoFail, { mode: 'retryable', times: 1, n: 3 }),
      ctx({ redeliveries: 5 }),
    );
    expect(r.state).toEqual({ ...before, lastN: 3, seen: [1, 2, 3] });
  });
});

describe('demo actor: remind', () => {
  it('sets a timer at `at`', () => {
    const at = '2031-01-01T00:00:00.000Z';
    const before = addAll([1]);
    const r = handle(before, wire(DemoRemind, { name: 'r1', at }));
    expect(r.timers).toEqual([{ name: 'r1', at: new Date(at) }]);
    expect(r.state).toEqual(before);
    expect(r.emit ?? []).toEqual([]);
  });

  it('sets a timer at ctx.now when `at` is absent', () => {
    const now = new Date('2032-02-02T02:02:02.000Z');
    const r = handle(initial(), wire(DemoRemind, { name: 'soon' }), ctx({ now }));
    expect(r.timers).toEqual([{ name: 'soon', at: now }]);
  });

  it('emits a cancel op when cancel is true', () => {
    const r = handle(initial(), wire(DemoRemind, { name: 'r1', cancel: true }));
    expect(r.timers).toEqual([{ name: 'r1', cancel: true }]);
  });

  it('sets (not cancels) when cancel is false', () => {
    const r = handle(initial(), wire(DemoRemind, { name: 'r1', cancel: false }));
    expect(r.timers).toEqual([{ name: 'r1', at: NOW }]);
  });
});

describe('demo actor: timer fired', () => {
  const fired = {
    timerId: '77',
    name: 'r1',
    dueAt: '2030-05-06T07:00:00.000Z',
    firedAt: '2030-05-06T07:00:01.250Z',
  };

  it('is accepted by the actor’s decode as runtime.timer.v1', () => {
    expect(demoActor.messages.types).toContain('runtime.timer.v1');
    expect(wire(TimerFired, fired)).toEqual({ ...fired, type: 'runtime.timer.v1' });
  });

  it('increments reminders and emits demo.reminded.v1 on respawn.demo.<key>.evt.reminded', () => {
    const before = addAll([1]);
    const r = handle(before, wire(TimerFired, fired));
    expect(r.state).toEqual({ ...before, reminders: 1 });
    expect(r.emit).toHaveLength(1);
    const e = r.emit![0]!;
    expect(e.subject).toBe(`respawn.demo.${KEY}.evt.reminded`);
    expect(e.type).toBe('demo.reminded.v1');
    expect(DemoReminded.decode(e.data)).toEqual({
      type: 'demo.reminded.v1',
      key: KEY,
      name: 'r1',
      dueAt: fired.dueAt,
      firedAt: fired.firedAt,
    });
    expect(handle(r.state, wire(TimerFired, fired)).state.reminders).toBe(2);
  });
});

describe('demo actor: purity', () => {
  it('never mutates its (deep-frozen) input state, for every message kind', () => {
    const state = deepFreeze(addAll(Array.from({ length: 200 }, (_, i) => i + 1)));
    const snapshot = structuredClone(state);
    const messages: Msg[] = [
      wire(DemoAdd, { n: 201, amount: 3 }),
      wire(DemoAdd, { n: 5, amount: 1 }),
      wire(DemoFail, { mode: 'retryable', times: 1, n: 9 }),
      wire(DemoFail, { mode: 'retryable', times: 1 }),
      wire(DemoRemind, { name: 'r1' }),
      wire(DemoRemind, { name: 'r1', cancel: true }),
      wire(TimerFired, {
        timerId: '1',
        name: 'r1',
        dueAt: NOW.toISOString(),
        firedAt: NOW.toISOString(),
      }),
    ];
    for (const m of messages) {
      const r = demoActor.handle(state, m, ctx({ redeliveries: 1 }));
      expect(r.state).toBeDefined();
    }
    expect(state).toEqual(snapshot);
  });

  it('returns the same result for the same input', () => {
    const s = addAll([1, 2]);
    const m = wire(DemoAdd, { n: 3, amount: 2, sentAt: 9 });
    const a = handle(s, m);
    const b = handle(s, m);
    expect(a.state).toEqual(b.state);
    expect(a.emit).toEqual(b.emit);
  });
});
