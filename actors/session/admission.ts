/**
 * Billing's answer to a start (`session.admission.v1`): refused, the player is told what
 * starting needs; allowed, the request goes to the allocator. Billing judged the balance at
 * the cheapest candidate's price; a balance that would not also cover the minimum On-Demand
 * keeps this session to Spot (it waits in line rather than boot a rig it cannot pay for).
 */
import { BotActions, type MessageOf, type SessionAdmission } from '../../contracts/index.ts';
import type { HandlerContext } from '../runtime/index.ts';
import type { SessionConfig, SessionState } from './state.ts';
import {
  allocRequest,
  allocWait,
  changed,
  ignore,
  matches,
  roundKey,
  startingTexts,
  tell,
  type Result,
} from './steps.ts';
import { texts } from './texts.ts';

/**
 * Whether the admitted balance also covers billing's minimum at the On-Demand price (billing
 * asked `requiredPaise` at the cheapest price; the same minutes On-Demand cost that much times
 * the ratio of the prices). A player Spot-only by choice, or with no On-Demand configured,
 * needs nothing more.
 */
export function coversOnDemand(
  cfg: SessionConfig,
  s: SessionState,
  admission: { balancePaise: number; requiredPaise: number },
): boolean {
  const od = cfg.onDemandPricePerHourPaise;
  if (od === undefined || s.spotOnly === true || admission.requiredPaise <= 0) return true;
  return admission.balancePaise * cfg.cheapestPricePerHourPaise >= admission.requiredPaise * od;
}

export function onAdmission(
  cfg: SessionConfig,
  s: SessionState,
  ctx: HandlerContext,
  msg: MessageOf<typeof SessionAdmission>,
): Result {
  if (s.phase !== 'starting' || !matches(s, msg.sessionId))
    return ignore(s, `admission for ${msg.sessionId} in ${s.phase}`);
  if (s.admitted === true) return ignore(s, `admission for ${msg.sessionId} already answered`);
  if (msg.allowed) {
    const admitted = { ...s, admitted: true as const };
    const next = coversOnDemand(cfg, s, msg)
      ? admitted
      : { ...admitted, spotOnlyForBalance: true as const };
    return {
      state: next,
      emit: [allocRequest(ctx.key, next), ...startingTexts(next)],
      timers: [allocWait(cfg, next, ctx)],
    };
  }
  const next: SessionState = { ...s, phase: 'idle' };
  return {
    state: next,
    emit: [
      changed(ctx, next, s.phase, 'insufficient_balance'),
      ...tell(s.chatId, texts.insufficient(msg.balancePaise, msg.requiredPaise), roundKey(s), [
        [{ text: 'Top up', data: BotActions.topup }],
      ]),
    ],
  };
}
