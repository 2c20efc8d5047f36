/**
 * The session's durable timers when they fire: the disk clean-up (warning, then archive) for a
 * player who stayed away, and, for the session that set them, the idle warning and stop,
 * heartbeat loss (as an eviction), a rig that never booted, an allocator that never answered.
 */
import {
  AzureArchiveDisk,
  type TimerFired,
  outAzureSubject,
  type MessageOf,
} from '../../contracts/index.ts';
import { emit, type HandlerContext } from '../runtime/index.ts';
import type { SessionConfig, SessionState } from './state.ts';
import { diskNameFor, ignore, iso, tell, type Result } from './steps.ts';
import { allocationFailed, evicted, stop } from './stopping.ts';
import { texts } from './texts.ts';

export function onTimer(
  cfg: SessionConfig,
  s: SessionState,
  msg: MessageOf<typeof TimerFired>,
  ctx: HandlerContext,
): Result {
  if (msg.name === 'disk_warn' || msg.name === 'disk_archive') {
    // A start cancels the disk timers: these fire only for a player who stayed away.
    if (s.phase !== 'idle' || s.diskState !== 'live') return { state: s };
    if (msg.name === 'disk_warn') {
      const days = Math.round(cfg.diskWarningMs / 86_400_000);
      return { state: s, emit: tell(s.chatId, texts.diskWarning(days)) };
    }
    const diskName = diskNameFor(ctx.key);
    const archive = emit(AzureArchiveDisk, outAzureSubject(s.region ?? cfg.region), {
      playerId: ctx.key,
      diskName,
      snapshotName: `snap-${diskName}`,
    });
    return { state: s, emit: [archive] };
  }
  const forSession = (msg.data as { sessionId?: string } | undefined)?.sessionId;
  if (forSession !== s.sessionId) return ignore(s, `timer ${msg.name} of an earlier session`);
  switch (msg.name) {
    case 'idle_warn':
      return {
        state: s,
        emit: tell(s.chatId, texts.idleWarning(Math.round(cfg.idleWarningMs / 60_000))),
      };
    case 'idle_stop':
      return ['ready', 'playing'].includes(s.phase)
        ? stop(cfg, s, ctx, 'idle_timeout')
        : { state: s };
    case 'hb_lost':
      return ['ready', 'playing'].includes(s.phase)
        ? evicted(
            cfg,
            s,
            ctx,
            new Date(Date.parse(s.lastHeartbeatAt ?? iso(ctx.now))),
            'heartbeat_lost',
          )
        : { state: s };
    case 'provision_timeout':
      return s.phase === 'provisioning'
        ? allocationFailed(cfg, s, ctx, 'the rig took too long to boot', 'provision_timeout')
        : { state: s };
    case 'alloc_wait': {
      // Answered meanwhile (a rig, a place in line), or a later round: nothing to do.
      const round = (msg.data as { allocation?: number } | undefined)?.allocation;
      if (!['starting', 'resuming'].includes(s.phase) || round !== s.allocation) {
        return { state: s };
      }
      return allocationFailed(cfg, s, ctx, 'the cloud did not answer in time');
    }
    default:
      return { state: s };
  }
}
