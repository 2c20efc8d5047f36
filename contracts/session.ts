/** Commands to a player's session actor: `respawn.session.<playerId>.cmd.<verb>`. */
import { z } from 'zod';
import { defineMessage } from './message.ts';

export const SessionVerbs = { start: 'start', stop: 'stop', status: 'status' } as const;
export type SessionVerb = (typeof SessionVerbs)[keyof typeof SessionVerbs];

/** Who asked: the player, or another service acting for an operator. */
export const Requesters = { player: 'player', operator: 'operator', system: 'system' } as const;
const requester = z.enum(Requesters);

export const StopReasons = {
  player: 'player',
  idleTimeout: 'idle_timeout',
  outOfCredit: 'out_of_credit',
  evictionUnresumable: 'eviction_unresumable',
  operator: 'operator',
} as const;
export type StopReason = (typeof StopReasons)[keyof typeof StopReasons];

export const SessionStart = defineMessage('session.start.v1', {
  requestedBy: requester,
  /** Telegram chat to answer in, when the request came from Telegram. */
  chatId: z.string().min(1).max(64).optional(),
  region: z
    .string()
    .regex(/^[a-z0-9]{2,32}$/)
    .optional(),
});

export const SessionStop = defineMessage('session.stop.v1', {
  requestedBy: requester,
  reason: z.enum(StopReasons),
  note: z.string().max(500).optional(),
});

export const SessionStatus = defineMessage('session.status.v1', {
  requestedBy: requester,
  chatId: z.string().min(1).max(64).optional(),
});
