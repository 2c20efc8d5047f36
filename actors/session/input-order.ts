/**
 * The order of a player's own inputs. Telegram updates are routed by any number of ingress
 * routers sharing one consumer, so one player's Play and Stop, pressed moments apart, can reach
 * the session in either order; the router stamps each start and stop with the update's
 * update_id (`inputSeq`), and the session applies none older than one it applied just before.
 */
import type { SessionState } from './state.ts';
import { iso } from './steps.ts';

/**
 * How long an applied input of the player's keeps an older one out. Two ingress routers can
 * publish one player's Play and Stop in either order (they share the consumer); an inversion
 * is a matter of milliseconds. Past this window an older update_id is not taken as stale:
 * Telegram numbers a bot's updates at random after a week without any.
 */
export const INPUT_ORDER_WINDOW_MS = 60_000;

/**
 * A start or stop from the player's own input (`inputSeq`): 'stale' when an input after it was
 * applied within the window (the player's later intent already holds), else the state with
 * this input recorded. Commands from other services carry no `inputSeq` and always apply.
 */
export function inputOrder(
  s: SessionState,
  inputSeq: number | undefined,
  now: Date,
): SessionState | 'stale' {
  if (inputSeq === undefined) return s;
  const last = s.lastInput;
  if (
    last !== undefined &&
    inputSeq < last.seq &&
    now.getTime() - Date.parse(last.at) < INPUT_ORDER_WINDOW_MS
  ) {
    return 'stale';
  }
  return { ...s, lastInput: { seq: inputSeq, at: iso(now) } };
}
