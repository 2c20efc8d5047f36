/**
 * The player's tier policy (`/tier`): Spot rigs only, waiting in line for one, or Spot first
 * and On-Demand (about 3× the price) rather than wait. It outlives sessions, and the session
 * asks the allocator accordingly for its next rig (a start, or a resume after an eviction).
 */
import { TierCallbackData, type MessageOf, type SessionSettings } from '../../contracts/index.ts';
import type { SessionState } from './state.ts';
import { tell, type Buttons, type Result } from './steps.ts';
import { texts } from './texts.ts';

const tierButtons: Buttons = [
  [
    { text: 'Spot only', data: TierCallbackData.spotOnly },
    { text: 'Spot, else On-Demand', data: TierCallbackData.any },
  ],
];

/** Without `spotOnly`: the policy told, with buttons to change it; with it: set and confirmed. */
export function settings(s: SessionState, msg: MessageOf<typeof SessionSettings>): Result {
  const chatId = msg.chatId ?? s.chatId;
  if (msg.spotOnly === undefined) {
    return {
      state: s,
      emit: tell(chatId, texts.tier(s.spotOnly === true), undefined, tierButtons),
    };
  }
  const next: SessionState = { ...s, spotOnly: msg.spotOnly };
  return { state: next, emit: tell(chatId, texts.tierSet(next)) };
}
