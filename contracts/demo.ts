/**
 * The demo actor's messages: a per-key counter used by the runtime's own tests, benchmark and
 * the run command until the product actors land. `respawn.demo.<key>.cmd.<verb>`.
 */
import { z } from 'zod';
import { defineMessage } from './message.ts';

export const DemoVerbs = { add: 'add', fail: 'fail', remind: 'remind' } as const;

/** Add `n`-th increment; `n` lets tests check per-key order. `sentAt` (ms) measures latency. */
export const DemoAdd = defineMessage('demo.add.v1', {
  n: z.number().int().min(0),
  amount: z.number().int().min(-1_000_000).max(1_000_000).default(1),
  sentAt: z.number().optional(),
});

/** Makes the handler fail: `terminal` is dead-lettered, `retryable` fails `times` attempts. */
export const DemoFail = defineMessage('demo.fail.v1', {
  mode: z.enum(['terminal', 'retryable']),
  times: z.number().int().min(1).max(100).default(1),
  n: z.number().int().min(0).optional(),
  /** A retryable failure asks to be tried again after this long (default 100 ms). */
  retryAfterMs: z.number().int().min(0).max(60_000).optional(),
});

/** Sets (or with `cancel`, cancels) a durable timer named `name` at `at` (ISO time). */
export const DemoRemind = defineMessage('demo.remind.v1', {
  name: z.string().regex(/^[a-z0-9_-]{1,64}$/),
  at: z.iso.datetime().optional(),
  cancel: z.boolean().optional(),
});

/** Emitted for every applied increment. */
export const DemoAdded = defineMessage('demo.added.v1', {
  key: z.string(),
  n: z.number().int(),
  total: z.number().int(),
  sentAt: z.number().optional(),
});

/** Emitted when a reminder timer fires. */
export const DemoReminded = defineMessage('demo.reminded.v1', {
  key: z.string(),
  name: z.string(),
  dueAt: z.iso.datetime(),
  firedAt: z.iso.datetime(),
});
