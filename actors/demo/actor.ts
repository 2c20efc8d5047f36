/**
 * The demo actor: a per-key counter. It exists to prove the runtime (order, exactly-once,
 * timers, dead letters) and to give the run command something to run before the product
 * actors land. It imports only contracts and the runtime, like every actor.
 */
import { z } from 'zod';
import {
  ActorKinds,
  DemoAdd,
  DemoAdded,
  DemoFail,
  DemoRemind,
  DemoReminded,
  ErrorCodes,
  RetryableError,
  TerminalError,
  TimerFired,
  evtSubject,
} from '../../contracts/index.ts';
import { defineActor, emit, type HandlerResult } from '../runtime/index.ts';

/** How many applied `n`s the state remembers, newest last (tests read them back). */
const SEEN_LIMIT = 200;

export const DemoState = z.object({
  total: z.number().int(),
  count: z.number().int(),
  lastN: z.number().int(),
  /** Increments whose `n` was not lastN + 1: must stay 0 when order holds. */
  outOfOrder: z.number().int(),
  seen: z.array(z.number().int()),
  reminders: z.number().int(),
});
export type DemoState = z.infer<typeof DemoState>;

export const demoActor = defineActor({
  kind: ActorKinds.demo,
  state: DemoState,
  initial: () => ({ total: 0, count: 0, lastN: 0, outOfOrder: 0, seen: [], reminders: 0 }),
  messages: [DemoAdd, DemoFail, DemoRemind],
  handle(state, msg, ctx): HandlerResult<DemoState> {
    switch (msg.type) {
      case DemoAdd.type: {
        const next: DemoState = {
          ...state,
          total: state.total + msg.amount,
          count: state.count + 1,
          lastN: msg.n,
          outOfOrder: state.outOfOrder + (msg.n === state.lastN + 1 ? 0 : 1),
          seen: [...state.seen, msg.n].slice(-SEEN_LIMIT),
        };
        return {
          state: next,
          emit: [
            emit(DemoAdded, evtSubject(ActorKinds.demo, ctx.key, 'added'), {
              key: ctx.key,
              n: msg.n,
              total: next.total,
              ...(msg.sentAt === undefined ? {} : { sentAt: msg.sentAt }),
            }),
          ],
        };
      }
      case DemoFail.type:
        if (msg.mode === 'terminal') {
          throw new TerminalError(ErrorCodes.rejected, `demo refuses message ${msg.n ?? '?'}`);
        }
        if (ctx.redeliveries < msg.times) {
          throw new RetryableError(
            ErrorCodes.unavailable,
            `demo fails attempt ${ctx.redeliveries + 1}`,
            {
              delayMs: msg.retryAfterMs ?? 100,
            },
          );
        }
        // Nothing to record: the state is unchanged, and the runtime is told why.
        if (msg.n === undefined) return { state, ignored: 'demo fail with nothing to record' };
        return {
          state: { ...state, lastN: msg.n, seen: [...state.seen, msg.n].slice(-SEEN_LIMIT) },
        };
      case DemoRemind.type:
        if (msg.cancel === true) return { state, timers: [{ name: msg.name, cancel: true }] };
        return {
          state,
          timers: [{ name: msg.name, at: msg.at === undefined ? ctx.now : new Date(msg.at) }],
        };
      case TimerFired.type:
        return {
          state: { ...state, reminders: state.reminders + 1 },
          emit: [
            emit(DemoReminded, evtSubject(ActorKinds.demo, ctx.key, 'reminded'), {
              key: ctx.key,
              name: msg.name,
              dueAt: msg.dueAt,
              firedAt: msg.firedAt,
            }),
          ],
        };
    }
  },
});
