/**
 * The session actor's building blocks: what it emits (events, player messages, commands to
 * billing and the allocator); the paths many inputs share (stop, eviction) are in stopping.ts.
 */
import {
  ActorKinds,
  AllocRelease,
  AllocRequest,
  SessionChanged,
  ErrorCodes,
  SESSION_ID_MAX_LENGTH,
  TelegramSend,
  TerminalError,
  type StopCallbackData,
  type TierCallbackData,
  type BotAction,
  cmdSubject,
  evtSubject,
  outTelegramSubject,
  playerDiskName,
  type SessionPhase,
} from '../../contracts/index.ts';
import {
  emit,
  type Emission,
  type HandlerContext,
  type HandlerResult,
  type TimerOp,
} from '../runtime/index.ts';
import type { SessionState } from './state.ts';
import type { SessionConfig } from './state.ts';
import { texts } from './texts.ts';

export type Result = HandlerResult<SessionState>;

export const ACTIVE: readonly SessionPhase[] = [
  'starting',
  'queued',
  'provisioning',
  'ready',
  'playing',
  'evicted',
  'resuming',
];
export const SESSION_TIMERS = [
  'idle_warn',
  'idle_stop',
  'hb_lost',
  'provision_timeout',
  'alloc_wait',
] as const;

/**
 * Set with every request to the allocator: no answer at all (a rig, or a place in line) by
 * then, and the start fails with the player told, rather than waiting forever for an allocator
 * that cannot judge (a region whose quota Azure never reports).
 */
export function allocWait(cfg: SessionConfig, s: SessionState, ctx: HandlerContext): TimerOp {
  return {
    name: 'alloc_wait',
    at: at(ctx, cfg.provisionTimeoutMs),
    data: { sessionId: s.sessionId, allocation: s.allocation },
  };
}
export const DISK_TIMERS = ['disk_warn', 'disk_archive'] as const;

/** The player's disk, named as every area names it (one per player). */
export const diskNameFor = playerDiskName;

export const iso = (d: Date): string => d.toISOString();
export const at = (ctx: HandlerContext, ms: number): Date => new Date(ctx.now.getTime() + ms);

/** The later of two ISO times (`b` when `a` is unset). */
export const later = (a: string | undefined, b: string): string =>
  a !== undefined && Date.parse(a) > Date.parse(b) ? a : b;

export function changed(
  ctx: HandlerContext,
  s: SessionState,
  previous: SessionPhase,
  reason?: string,
): Emission {
  return emit(SessionChanged, evtSubject(ActorKinds.session, ctx.key, s.phase), {
    phase: s.phase,
    previous,
    at: iso(ctx.now),
    ...(s.sessionId === undefined ? {} : { sessionId: s.sessionId }),
    ...(reason === undefined ? {} : { reason }),
    ...(s.tier === undefined ? {} : { tier: s.tier }),
    ...(s.pricePerHourPaise === undefined ? {} : { pricePerHourPaise: s.pricePerHourPaise }),
    ...(s.vmName === undefined ? {} : { vmName: s.vmName }),
  });
}

/** The player's `seq`-th session; a key too long to make one is refused for good. */
export function sessionIdFor(key: string, seq: number): string {
  const id = `${key}-${seq}`;
  if (id.length > SESSION_ID_MAX_LENGTH) {
    throw new TerminalError(
      ErrorCodes.rejected,
      `player key is ${key.length} characters: a session id (<key>-<n>) holds at most ${SESSION_ID_MAX_LENGTH}`,
    );
  }
  return id;
}

/**
 * One status message per allocation round, edited in place as it moves on: "Starting…", then
 * a place in line, then the rig got (or why not). What the player must not miss (ready, an
 * eviction, a stop) is a new message, so their phone tells them.
 */
export const roundKey = (s: SessionState): string => `alloc:${s.sessionId}:${s.allocation}`;
/** "Stopping…", then how long it ran: one message. */
export const stopKey = (s: SessionState): string => `stop:${s.sessionId}`;

/** The bot's own buttons: menu actions, a session's Stop, and the tier-policy buttons' data. */
export type Buttons = {
  text: string;
  data: BotAction | StopCallbackData | (typeof TierCallbackData)[keyof typeof TierCallbackData];
}[][];

export function tell(
  chatId: string | undefined,
  text: string,
  editKey?: string,
  buttons?: Buttons,
): Emission[] {
  return send(chatId, { text, editKey, buttons });
}

/**
 * News in a status message's story (a rig got after a wait in line, a failed start): a new
 * message, so the player's phone tells them, which later sends with `editKey` edit.
 */
export function news(chatId: string | undefined, text: string, editKey: string): Emission[] {
  return send(chatId, { text, editKey, fresh: true });
}

/**
 * An answer to a question the player may ask again and again (/status): a newer answer queued
 * for the chat replaces this one if it has not gone out yet (`collapseKey`).
 */
export function answer(chatId: string | undefined, text: string, collapseKey: string): Emission[] {
  return send(chatId, { text, collapseKey });
}

function send(
  chatId: string | undefined,
  m: { text: string; editKey?: string; fresh?: true; buttons?: Buttons; collapseKey?: string },
): Emission[] {
  if (chatId === undefined) return [];
  return [
    emit(TelegramSend, outTelegramSubject(chatId), {
      chatId,
      text: m.text,
      ...(m.editKey === undefined ? {} : { editKey: m.editKey }),
      ...(m.fresh === undefined ? {} : { fresh: m.fresh }),
      ...(m.buttons === undefined ? {} : { buttons: m.buttons }),
      ...(m.collapseKey === undefined ? {} : { collapseKey: m.collapseKey }),
    }),
  ];
}

export const cancelAll = (): TimerOp[] =>
  SESSION_TIMERS.map((name) => ({ name, cancel: true as const }));

export function idleTimers(cfg: SessionConfig, sinceMs: number, s: SessionState): TimerOp[] {
  const data = { sessionId: s.sessionId };
  return [
    { name: 'idle_warn', at: new Date(sinceMs + cfg.idleTimeoutMs - cfg.idleWarningMs), data },
    { name: 'idle_stop', at: new Date(sinceMs + cfg.idleTimeoutMs), data },
  ];
}

export function allocRequest(key: string, s: SessionState): Emission {
  return emit(AllocRequest, cmdSubject(ActorKinds.alloc, s.region ?? '', 'request'), {
    sessionId: s.sessionId ?? '',
    playerId: key,
    allocation: s.allocation,
    ...(s.diskZone === undefined ? {} : { diskZone: s.diskZone }),
    ...(s.spotOnly === true || s.spotOnlyForBalance === true ? { spotOnly: true } : {}),
  });
}

/** What the player reads when a start goes ahead: starting, and where and how it starts. */
export function startingTexts(s: SessionState): Emission[] {
  const moved = s.diskState !== 'none' && s.askedRegion !== undefined && s.askedRegion !== s.region;
  return [
    ...tell(s.chatId, texts.starting, roundKey(s)),
    ...(moved && s.region !== undefined ? tell(s.chatId, texts.diskRegion(s.region)) : []),
    ...(s.diskState === 'archived' ? tell(s.chatId, texts.restoring) : []),
  ];
}

/**
 * A Play while a session runs: what it is doing already, once in `repeatReplyMs` unless the
 * session moved on since (then there is news). Presses in between change nothing.
 */
export function already(
  cfg: SessionConfig,
  s: SessionState,
  ctx: HandlerContext,
  chatId: string | undefined,
): Result {
  const told = s.alreadyTold;
  if (told?.phase === s.phase && ctx.now.getTime() - Date.parse(told.at) < cfg.repeatReplyMs) {
    return { state: s };
  }
  return {
    state: { ...s, alreadyTold: { at: iso(ctx.now), phase: s.phase } },
    emit: tell(chatId ?? s.chatId, texts.already(s)),
  };
}

export const matches = (s: SessionState, sessionId: string): boolean => s.sessionId === sessionId;

/** A message that changes nothing, and why (logged by the runtime as "message ignored"). */
export const ignore = (s: SessionState, why: string): Result => ({ state: s, ignored: why });

/**
 * When an eviction notice was seen: the agent's time, kept between the last sign of life
 * already billed (the last heartbeat, or ready) and now. The agent's clock is trusted as for
 * heartbeats, no further: an early time cannot take back time already shown as played.
 */
export function noticeTime(s: SessionState, ctx: HandlerContext, at: string | undefined): Date {
  const now = ctx.now.getTime();
  if (at === undefined) return ctx.now;
  const floor = Date.parse(s.lastHeartbeatAt ?? s.readyAt ?? iso(ctx.now));
  return new Date(Math.min(now, Math.max(floor, Date.parse(at))));
}

export const isServed = (cfg: SessionConfig, region: string): boolean =>
  cfg.regions === undefined || region === cfg.region || cfg.regions.includes(region);

/** A start naming a region nobody serves would wait forever: refused for good, with the reason. */
export function servedRegion(cfg: SessionConfig, region: string): void {
  if (isServed(cfg, region)) return;
  throw new TerminalError(
    ErrorCodes.rejected,
    `region ${region} is not served here (served: ${[cfg.region, ...(cfg.regions ?? []).filter((r) => r !== cfg.region)].join(', ')})`,
  );
}

/**
 * A VM of `sessionId` this session does not own: that session ended (a stop that reached the
 * allocator before its request), a newer one runs, or the record is gone. It is given back,
 * or it would run, and cost, for nobody. A session still running under that id keeps its
 * VMs its own way (a stop releases them all), so nothing is given back from under it.
 */
export function disowned(
  s: SessionState,
  ctx: HandlerContext,
  vm: { sessionId: string; region: string },
  reason: 'stale_allocation' | 'not_owned',
): Result | undefined {
  if (matches(s, vm.sessionId) && s.phase !== 'idle') return undefined;
  return {
    state: s,
    emit: [
      emit(AllocRelease, cmdSubject(ActorKinds.alloc, vm.region, 'release'), {
        sessionId: vm.sessionId,
        playerId: ctx.key,
        reason,
      }),
    ],
  };
}
