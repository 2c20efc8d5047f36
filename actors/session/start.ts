/**
 * A start: from idle, a new session (billing asked first when admission is on); while the last
 * session is stopping, remembered and begun the moment it has stopped (`startNext`), so a Play
 * pressed during a slow stop is not lost; otherwise an "already …" answer.
 */
import {
  ActorKinds,
  BillingAdmit,
  cmdSubject,
  type MessageOf,
  type SessionStart,
} from '../../contracts/index.ts';
import { emit, type HandlerContext } from '../runtime/index.ts';
import { initialSessionState, type SessionConfig, type SessionState } from './state.ts';
import {
  DISK_TIMERS,
  allocRequest,
  allocWait,
  already,
  changed,
  iso,
  servedRegion,
  sessionIdFor,
  startingTexts,
  type Result,
} from './steps.ts';

/** What a start asks for: where the player's answers go, and a region if it named one. */
export interface StartAsk {
  chatId?: string | undefined;
  region?: string | undefined;
}

export function onStart(
  cfg: SessionConfig,
  s: SessionState,
  ctx: HandlerContext,
  msg: MessageOf<typeof SessionStart>,
): Result {
  if (s.phase === 'idle') return start(cfg, s, ctx, msg);
  if (s.phase !== 'stopping') return already(cfg, s, ctx, msg.chatId);
  // Refused now as a start from idle would be (the disk's region wins over the one asked).
  if (s.diskState === 'none' && msg.region !== undefined) servedRegion(cfg, msg.region);
  const startNext = {
    ...(msg.chatId === undefined ? {} : { chatId: msg.chatId }),
    ...(msg.region === undefined ? {} : { region: msg.region }),
  };
  return already(cfg, { ...s, startNext }, ctx, msg.chatId);
}

/** A new session from idle `s`. */
export function start(
  cfg: SessionConfig,
  s: SessionState,
  ctx: HandlerContext,
  ask: StartAsk,
): Result {
  const seq = s.seq + 1;
  // A player's disk (or its snapshot) stays in its region: every later VM is made there.
  const diskRegion = s.diskState === 'none' ? undefined : s.region;
  if (diskRegion === undefined && ask.region !== undefined) servedRegion(cfg, ask.region);
  const next: SessionState = {
    ...initialSessionState(),
    seq,
    diskZone: s.diskZone,
    phase: 'starting',
    sessionId: sessionIdFor(ctx.key, seq),
    chatId: ask.chatId ?? s.chatId,
    region: diskRegion ?? ask.region ?? cfg.region,
    allocation: 1,
    startedAt: iso(ctx.now),
    diskState: s.diskState,
    ...(s.lastPlayedAt === undefined ? {} : { lastPlayedAt: s.lastPlayedAt }),
    ...(s.lastInput === undefined ? {} : { lastInput: s.lastInput }),
    ...(ask.region === undefined ? {} : { askedRegion: ask.region }),
    ...(s.spotOnly === undefined ? {} : { spotOnly: s.spotOnly }),
  };
  const asked = cfg.requireAdmission
    ? emit(BillingAdmit, cmdSubject(ActorKinds.billing, ctx.key, 'admit'), {
        sessionId: next.sessionId ?? '',
        cheapestPricePerHourPaise: cfg.cheapestPricePerHourPaise,
        ...(next.chatId === undefined ? {} : { chatId: next.chatId }),
      })
    : allocRequest(ctx.key, next);
  return {
    state: next,
    emit: [
      changed(ctx, next, s.phase),
      asked,
      // With admission, "Starting…" waits for billing's yes: a refused start is told once, as
      // its own message, never "Starting…" edited into a refusal.
      ...(cfg.requireAdmission ? [] : startingTexts(next)),
    ],
    timers: [
      ...DISK_TIMERS.map((name) => ({ name, cancel: true as const })),
      ...(cfg.requireAdmission ? [] : [allocWait(cfg, next, ctx)]),
    ],
  };
}
