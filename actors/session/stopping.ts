/**
 * The ways a session ends or loses its rig: a stop (asked, or a failed start), its end when
 * the allocator confirms the VM released, and an eviction (resumed elsewhere, or the end).
 */
import {
  ActorKinds,
  AllocRelease,
  BillingMeterClose,
  BillingMeterPause,
  cmdSubject,
  type MessageOf,
  type SessionStop,
} from '../../contracts/index.ts';
import { emit, type Emission, type HandlerContext, type TimerOp } from '../runtime/index.ts';
import { closeStrayMeters } from './meters.ts';
import { initialSessionState, type SessionConfig, type SessionState } from './state.ts';
import {
  ACTIVE,
  allocRequest,
  allocWait,
  answer,
  at,
  cancelAll,
  changed,
  isServed,
  iso,
  news,
  roundKey,
  stopKey,
  tell,
  type Result,
} from './steps.ts';
import { start } from './start.ts';
import { texts } from './texts.ts';

/**
 * A stop asked for (player, idle, out of credit, operator). A Stop button of a session that
 * has ended (`stop:<session>`) stops nothing else; billing's stop also closes the meters it
 * names that outlived their session.
 */
export function onStop(
  cfg: SessionConfig,
  s: SessionState,
  ctx: HandlerContext,
  msg: MessageOf<typeof SessionStop>,
): Result {
  const another = msg.sessionId !== undefined && msg.sessionId !== s.sessionId;
  if (s.phase === 'stopping' && s.startNext !== undefined && !another) {
    // A Play pressed while stopping, then a Stop: the next session does not start.
    const { startNext: _forgotten, ...rest } = s;
    return {
      state: rest,
      emit: [
        ...closeStrayMeters(s, ctx, msg.meteredSessionIds ?? []),
        ...(msg.requestedBy === 'player' ? answer(s.chatId, texts.startForgotten, 'stop') : []),
      ],
    };
  }
  if (!ACTIVE.includes(s.phase) || another) {
    const closes = closeStrayMeters(s, ctx, msg.meteredSessionIds ?? []);
    // Only the player asked for something they can see; a system's stop is not news.
    const said = another
      ? texts.endedAlready
      : s.phase === 'stopping'
        ? texts.stoppingAlready
        : texts.nothingToStop;
    return {
      state: s,
      emit: [...closes, ...(msg.requestedBy === 'player' ? answer(s.chatId, said, 'stop') : [])],
    };
  }
  const r = stop(cfg, s, ctx, msg.reason);
  const others = (msg.meteredSessionIds ?? []).filter((id) => id !== s.sessionId);
  return { ...r, emit: [...(r.emit ?? []), ...closeStrayMeters(s, ctx, others)] };
}

/** `endedAt`: when the VM stopped serving the player (an eviction), if before now: billed to then. */
export function stop(
  cfg: SessionConfig,
  s: SessionState,
  ctx: HandlerContext,
  reason: string,
  endedAt: Date = ctx.now,
): Result {
  const next: SessionState = {
    ...s,
    phase: 'stopping',
    stopReason: reason,
    meterOpen: false,
    ...played(s, endedAt),
  };
  const emitted: Emission[] = [changed(ctx, next, s.phase, reason)];
  if (s.meterOpen && s.sessionId !== undefined) {
    emitted.push(
      emit(BillingMeterClose, cmdSubject(ActorKinds.billing, ctx.key, 'meter_close'), {
        sessionId: s.sessionId,
        at: iso(endedAt),
        reason,
      }),
    );
  }
  emitted.push(
    emit(AllocRelease, cmdSubject(ActorKinds.alloc, s.region ?? cfg.region, 'release'), {
      sessionId: s.sessionId ?? '',
      playerId: ctx.key,
      reason,
      allocation: s.allocation,
    }),
    ...tell(s.chatId, texts.stopping, stopKey(s)),
  );
  return { state: next, emit: emitted, timers: cancelAll() };
}

/** A start (or resume) that cannot be served: idle by the stop's road, the player told why. */
export function allocationFailed(
  cfg: SessionConfig,
  s: SessionState,
  ctx: HandlerContext,
  reason: string,
  stopReason: FailedStart = 'allocation_failed',
): Result {
  // The same road to idle as a stop (the allocator confirms with vm_released).
  const r = stop(cfg, { ...s, chatId: undefined }, ctx, stopReason);
  return {
    ...r,
    state: { ...r.state, chatId: s.chatId },
    emit: [
      ...(r.emit ?? []),
      // News, not an edit of "Starting…": an edit makes no notification, and this one matters.
      ...news(s.chatId, texts.failed(reason, s.firstReadyAt !== undefined), roundKey(s)),
    ],
  };
}

/** Stop reasons of a start that failed: the player was told why already, no "stopped" after. */
const FAILED_STARTS = ['allocation_failed', 'provision_timeout'] as const;

type FailedStart = (typeof FAILED_STARTS)[number];

const failedStart = (reason: string | undefined): boolean =>
  (FAILED_STARTS as readonly string[]).includes(reason ?? '');

/** The VM of a stopping session is gone: idle, the player told how long it ran, disk timers set. */
export function stopped(cfg: SessionConfig, s: SessionState, ctx: HandlerContext): Result {
  // What was billed: each rig from ready until it was evicted or stopped.
  const playedMs = s.firstReadyAt === undefined ? undefined : (s.playedMs ?? 0);
  const next: SessionState = {
    ...initialSessionState(),
    seq: s.seq,
    diskZone: s.diskZone,
    chatId: s.chatId,
    diskState: s.diskState,
    lastPlayedAt: iso(ctx.now),
    ...(s.region === undefined ? {} : { region: s.region }),
    ...(s.lastInput === undefined ? {} : { lastInput: s.lastInput }),
    ...(s.spotOnly === undefined ? {} : { spotOnly: s.spotOnly }),
  };
  const diskTimers: TimerOp[] =
    s.diskState === 'live'
      ? [
          { name: 'disk_warn', at: at(ctx, cfg.diskIdleMs - cfg.diskWarningMs) },
          { name: 'disk_archive', at: at(ctx, cfg.diskIdleMs) },
        ]
      : [];
  const told: Emission[] = [
    changed(ctx, { ...next, sessionId: s.sessionId }, s.phase, s.stopReason),
    // A failed start was told why already ("Could not start your rig: …").
    ...(failedStart(s.stopReason)
      ? []
      : tell(s.chatId, texts.stopped(playedMs, s.stopReason), stopKey(s))),
  ];
  if (s.startNext === undefined) return { state: next, emit: told, timers: diskTimers };
  // Play was pressed while this session stopped: the next one starts now (no disk clean-up).
  // A region no longer served (configuration changed meanwhile) is not asked for: this
  // message must not fail, or the session would stay stopping.
  const { chatId, region } = s.startNext;
  const r = start(cfg, next, ctx, {
    chatId,
    region: region !== undefined && isServed(cfg, region) ? region : undefined,
  });
  return { ...r, emit: [...told, ...(r.emit ?? [])] };
}

/** An eviction (announced, or presumed from lost heartbeats): pause billing, resume elsewhere. */
export function evicted(
  cfg: SessionConfig,
  s: SessionState,
  ctx: HandlerContext,
  evictedAt: Date,
  why: string,
): Result {
  if (s.allocation > cfg.maxResumes) return stop(cfg, s, ctx, 'eviction_unresumable', evictedAt);
  const sessionId = s.sessionId ?? '';
  const evictedState: SessionState = {
    ...s,
    phase: 'evicted',
    evictedAt: iso(evictedAt),
    ...played(s, evictedAt),
  };
  const resuming: SessionState = {
    ...evictedState,
    phase: 'resuming',
    allocation: s.allocation + 1,
    connect: undefined,
  };
  const emitted: Emission[] = [
    changed(ctx, evictedState, s.phase, why),
    changed(ctx, resuming, 'evicted'),
  ];
  // Only a rig's meter runs: a VM still booting after an earlier eviction has none to pause.
  if (s.meterOpen && (s.phase === 'ready' || s.phase === 'playing')) {
    emitted.push(
      emit(BillingMeterPause, cmdSubject(ActorKinds.billing, ctx.key, 'meter_pause'), {
        sessionId,
        at: iso(evictedAt),
      }),
    );
  }
  emitted.push(
    emit(AllocRelease, cmdSubject(ActorKinds.alloc, s.region ?? cfg.region, 'release'), {
      sessionId,
      playerId: ctx.key,
      reason: 'evicted',
      allocation: s.allocation,
    }),
    allocRequest(ctx.key, resuming),
    ...tell(s.chatId, texts.evicted(why)),
  );
  return {
    state: resuming,
    emit: emitted,
    timers: [...cancelAll(), allocWait(cfg, resuming, ctx)],
  };
}

/** The current rig's billed time (ready, playing: its meter runs) added to `playedMs` at `end`. */
function played(s: SessionState, end: Date): Pick<SessionState, 'playedMs'> {
  if (!['ready', 'playing'].includes(s.phase) || s.readyAt === undefined) return {};
  const ms = Math.max(0, end.getTime() - Date.parse(s.readyAt));
  return { playedMs: (s.playedMs ?? 0) + ms };
}
