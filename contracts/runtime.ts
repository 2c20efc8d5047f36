/** Messages the actor runtime itself produces. */
import { z } from 'zod';
import { defineMessage } from './message.ts';

/** The verb on which a durable timer's firing reaches its actor. */
export const TIMER_VERB = 'timer';

/** A durable timer fired. `dueAt` is when it was set for; `firedAt` when the sweeper saw it. */
export const TimerFired = defineMessage('runtime.timer.v1', {
  timerId: z.string().regex(/^\d+$/),
  name: z.string().min(1).max(128),
  dueAt: z.iso.datetime(),
  firedAt: z.iso.datetime(),
  data: z.json().optional(),
});
