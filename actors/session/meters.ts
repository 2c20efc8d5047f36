/**
 * Meters that outlived their session. Billing closes a meter only when the session says so; a
 * close that was lost, or an open that arrived after its close (a re-injected dead letter),
 * leaves a meter charging a player who plays nothing. Billing's out-of-credit stop names the
 * sessions it still meters (`session.stop.v1` `meteredSessionIds`), and the session closes
 * every one of them that is not the session running now.
 */
import { ActorKinds, BillingMeterClose, cmdSubject } from '../../contracts/index.ts';
import { emit, type Emission, type HandlerContext } from '../runtime/index.ts';
import { ACTIVE } from './steps.ts';
import type { SessionState } from './state.ts';

/**
 * Closes each of `sessionIds` that is not this player's running session, at the latest time
 * it can have been played (one session at a time per player): the start of the session live
 * now, or, with none live, the end of the last one. Billing gives back whatever it had charged
 * past that time.
 */
export function closeStrayMeters(
  s: SessionState,
  ctx: HandlerContext,
  sessionIds: readonly string[],
): Emission[] {
  const out: Emission[] = [];
  for (const id of new Set(sessionIds)) {
    const current = id === s.sessionId;
    // Running, or being stopped (its stop closed its meter already).
    if (current && (ACTIVE.includes(s.phase) || s.phase === 'stopping')) continue;
    // A live session: every other one ended before it started. Idle: all ended by the last end.
    const bound = s.sessionId !== undefined && !current ? s.startedAt : s.lastPlayedAt;
    const at =
      bound === undefined || Date.parse(bound) > ctx.now.getTime() ? ctx.now : new Date(bound);
    out.push(
      emit(BillingMeterClose, cmdSubject(ActorKinds.billing, ctx.key, 'meter_close'), {
        sessionId: id,
        at: at.toISOString(),
        reason: 'not_running',
      }),
    );
  }
  return out;
}
