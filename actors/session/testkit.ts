/**
 * For the session actor's pure tests: runs its handler the way the runtime would (each message
 * through the wire and the actor's own decode) for player `p1` on a fixed clock, and reads what
 * it emitted back through the same contracts.
 */
import {
  SessionAdmission,
  SessionAgentReady,
  SessionAllocated,
  SessionStart,
  TelegramSend,
  type MessageDef,
} from '../../contracts/index.ts';
import type { Emission, HandlerResult, TimerOp } from '../runtime/index.ts';
import { createSessionActor } from './actor.ts';
import { initialSessionState, type SessionConfig, type SessionState } from './state.ts';

export const T0 = new Date('2026-03-01T18:00:00Z');
export const P = 'p1';
export const later = (ms: number): Date => new Date(T0.getTime() + ms);

export type Handle = (
  s: SessionState,
  def: MessageDef,
  value: unknown,
  now?: Date,
) => HandlerResult<SessionState>;

/** The handler of a session actor with `cfg`, called as the runtime would call it. */
export function sessionHandler(cfg: SessionConfig): Handle {
  const actor = createSessionActor(cfg);
  return (s, def, value, now = T0) =>
    actor.handle(s, def.decode(def.encode(value)) as never, {
      kind: 'session',
      key: P,
      now,
      msgId: 'm',
      subject: `respawn.session.${P}.cmd.x`,
      redeliveries: 0,
    });
}

export const of = <T extends string, V>(
  r: HandlerResult<unknown>,
  def: MessageDef<T, V>,
): (V & { type: T })[] =>
  (r.emit ?? []).filter((e: Emission) => e.type === def.type).map((e) => def.decode(e.data));
export const subjects = (r: HandlerResult<unknown>, def: MessageDef): string[] =>
  (r.emit ?? []).filter((e) => e.type === def.type).map((e) => e.subject);
export const texts = (r: HandlerResult<unknown>): string[] =>
  of(r, TelegramSend).map((t) => t.text);
export const timer = (r: HandlerResult<unknown>, name: string): TimerOp | undefined =>
  r.timers?.find((t) => t.name === name);

/** The allocator's answer for session p1-1: Spot at ₹30.00/hour on `vm-a` (override what differs). */
export const spotAllocated = {
  sessionId: 'p1-1',
  region: 'centralindia',
  tier: 'spot',
  size: 'NC4',
  pricePerHourPaise: 3_000,
  vmName: 'vm-a',
};

/** Session p1-1 admitted by billing, waiting for the allocator. */
export function toStarting(handle: Handle): SessionState {
  const s = handle(initialSessionState(), SessionStart, {
    requestedBy: 'player',
    chatId: '42',
  }).state;
  return handle(s, SessionAdmission, {
    sessionId: 'p1-1',
    allowed: true,
    balancePaise: 50_000,
    requiredPaise: 1_500,
  }).state;
}

/** Session p1-1 ready on Spot VM `vm-a`. */
export function toReady(handle: Handle): SessionState {
  let s = toStarting(handle);
  s = handle(s, SessionAllocated, spotAllocated).state;
  return handle(s, SessionAgentReady, {
    sessionId: 'p1-1',
    vmName: 'vm-a',
    host: '10.0.0.4',
    port: 47989,
    pin: '1234',
  }).state;
}
