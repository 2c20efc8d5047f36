/**
 * Repairs of the player's recorded disk, asked for by the disk reconciler (the allocator's
 * effects runner) when two inventories a grace period apart agree that Azure and this state
 * disagree. Only an idle session that has started no session since the reconciler looked is
 * repaired; otherwise nothing changes and the next round looks again.
 */
import {
  playerDiskName,
  type MessageOf,
  type SessionDiskFound,
  type SessionDiskMissing,
} from '../../contracts/index.ts';
import type { HandlerContext, TimerOp } from '../runtime/index.ts';
import type { SessionConfig, SessionState } from './state.ts';
import { DISK_TIMERS, at, tell, type Result } from './steps.ts';
import { texts } from './texts.ts';

const cancelDiskTimers = (): TimerOp[] =>
  DISK_TIMERS.map((name) => ({ name, cancel: true as const }));

function current(
  s: SessionState,
  ctx: HandlerContext,
  msg: { diskName: string; seq: number },
): boolean {
  return s.phase === 'idle' && s.seq === msg.seq && msg.diskName === playerDiskName(ctx.key);
}

/**
 * The recorded disk is gone. With its archive still there the state says so (the next start
 * restores it and tells the player); with nothing left the next start makes a fresh disk, and
 * the player hears now rather than finding their games gone.
 */
export function diskMissing(
  s: SessionState,
  msg: MessageOf<typeof SessionDiskMissing>,
  ctx: HandlerContext,
): Result {
  if (!current(s, ctx, msg) || s.diskState === 'none') return { state: s };
  if (msg.snapshotName !== undefined) {
    if (s.diskState === 'archived') return { state: s };
    return {
      state: { ...s, diskState: 'archived', diskZone: undefined },
      timers: cancelDiskTimers(),
    };
  }
  return {
    state: { ...s, diskState: 'none', diskZone: undefined },
    emit: tell(s.chatId, texts.diskLost),
    timers: cancelDiskTimers(),
  };
}

/**
 * Azure has the player's disk and the state does not record it: adopt it, so allocation goes
 * to its zone (a VM elsewhere cannot attach it) and an unused disk is archived in time. The
 * create path already reuses a disk of the player's name, so no second disk would be made.
 */
export function diskFound(
  cfg: SessionConfig,
  s: SessionState,
  msg: MessageOf<typeof SessionDiskFound>,
  ctx: HandlerContext,
): Result {
  if (!current(s, ctx, msg) || s.diskState === 'live') return { state: s };
  return {
    state: { ...s, diskState: 'live', diskZone: msg.zone, region: msg.region },
    timers: [
      { name: 'disk_warn', at: at(ctx, cfg.diskIdleMs - cfg.diskWarningMs) },
      { name: 'disk_archive', at: at(ctx, cfg.diskIdleMs) },
    ],
  };
}
