/**
 * The allocator's steps: what one handler does to its state (a `Step`: the state, changed in
 * place, plus what to emit and which timers to set) when it places a request, queues it, tells
 * the queue its positions, asks Azure for work or refuses. actor.ts routes messages to them.
 */
import {
  ActorKinds,
  AllocDecided,
  AzureCreateVm,
  AzureDeleteVm,
  AzureRefresh,
  SessionAllocFailed,
  SessionAllocated,
  SessionQueued,
  SessionVmReleased,
  cmdSubject,
  evtSubject,
  outAzureSubject,
  playerDiskName,
} from '../../contracts/index.ts';
import { emit, type Emission, type HandlerContext, type TimerOp } from '../runtime/index.ts';
import {
  dequeueAt,
  dequeueSession,
  enqueueBack,
  enqueueByArrival,
  isQueued,
  putReservation,
  reservationsOf,
} from './book.ts';
import { nextWarmUp, pickCandidate, reservationFor } from './place.ts';
import type { AllocState, AllocatorConfig, QueueEntry, Reservation } from './state.ts';

export interface Step {
  s: AllocState;
  emit: Emission[];
  timers: TimerOp[];
}

export const iso = (d: Date): string => d.toISOString();

type Decision = 'reserved' | 'queued' | 'cold' | 'warm' | 'released' | 'failed' | 'orphan';

export function decided(
  ctx: HandlerContext,
  decision: Decision,
  extra: Record<string, string>,
): Emission {
  return emit(AllocDecided, evtSubject(ActorKinds.alloc, ctx.key, decision), {
    decision,
    at: iso(ctx.now),
    ...extra,
  });
}

/**
 * Tells a session a VM of its is gone (`vmName`), or that a release of `round` found none to
 * let go of. With the latest round the news covers and how many of the session's VMs are still
 * held: a stopping session ends on news of its own round with none left.
 */
export function vmReleased(
  st: Step,
  who: { sessionId: string; playerId: string },
  round: number | undefined,
  vmName?: string,
): Emission {
  return emit(SessionVmReleased, cmdSubject(ActorKinds.session, who.playerId, 'vm_released'), {
    sessionId: who.sessionId,
    ...(vmName === undefined ? {} : { vmName }),
    ...(round === undefined || round < 1 ? {} : { allocation: round }),
    stillHeld: reservationsOf(st.s, who.sessionId).length,
  });
}

/** The round a gone VM's news covers: its own, or a later one released with it. */
export const roundCovered = (r: Reservation): number => Math.max(r.allocation, r.releasedUpTo ?? 0);

export function createEffect(
  cfg: AllocatorConfig,
  ctx: HandlerContext,
  vmName: string,
  r: Reservation,
): Emission {
  const c = cfg.candidates.find((x) => x.id === r.candidate)!;
  return emit(AzureCreateVm, outAzureSubject(ctx.key), {
    sessionId: r.sessionId,
    playerId: r.playerId,
    vmName,
    nicName: r.nicName,
    diskName: playerDiskName(r.playerId),
    size: c.size,
    priority: c.tier === 'spot' ? 'spot' : 'regular',
    ...(c.zone === undefined ? {} : { zone: c.zone }),
    tags: {
      player: r.playerId,
      session: r.sessionId,
      tier: c.tier,
      purpose: 'respawn-session',
      region: ctx.key,
    },
  });
}

export function deleteEffect(
  ctx: HandlerContext,
  vmName: string,
  r: { sessionId: string; nicName: string; playerId?: string },
): Emission {
  return emit(AzureDeleteVm, outAzureSubject(ctx.key), {
    sessionId: r.sessionId,
    vmName,
    nicName: r.nicName,
    ...(r.playerId === undefined ? {} : { playerId: r.playerId }),
  });
}

/** Deletes a reservation's VM (and NIC): it counts against quota until the delete reports. */
export function startDelete(
  st: Step,
  ctx: HandlerContext,
  vmName: string,
  r: Reservation,
  frees = false,
): void {
  const { release: _release, ...rest } = r;
  putReservation(st.s, vmName, {
    ...rest,
    status: 'deleting',
    attempts: 0,
    ...(frees ? { frees: true as const } : {}),
  });
  st.emit.push(deleteEffect(ctx, vmName, r));
}

/** A VM that ran is gone: the capacity it held is free, its candidate warm again. */
export function warmFreed(st: Step, ctx: HandlerContext, r: Reservation): void {
  if (r.frees !== true || st.s.cold[r.candidate] === undefined) return;
  const { [r.candidate]: _was, ...cold } = st.s.cold;
  st.s = { ...st.s, cold };
  // About the candidate, not the session whose VM happened to be deleted first.
  st.emit.push(decided(ctx, 'warm', { candidate: r.candidate, detail: 'freed' }));
}

/** Tries to give `q` a VM now; false when no candidate fits. */
export function tryPlace(
  cfg: AllocatorConfig,
  st: Step,
  q: QueueEntry,
  ctx: HandlerContext,
): boolean {
  const c = pickCandidate(cfg, st.s, q, ctx.now);
  if (c === undefined) return false;
  const { vmName, reservation } = reservationFor(st.s, q, c, ctx.now);
  putReservation(st.s, vmName, reservation);
  st.emit.push(
    createEffect(cfg, ctx, vmName, reservation),
    emit(SessionAllocated, cmdSubject(ActorKinds.session, q.playerId, 'allocated'), {
      sessionId: q.sessionId,
      region: ctx.key,
      tier: c.tier,
      size: c.size,
      pricePerHourPaise: c.pricePerHourPaise,
      vmName,
      ...(c.zone === undefined ? {} : { zone: c.zone }),
    }),
    decided(ctx, 'reserved', { sessionId: q.sessionId, candidate: c.id, vmName }),
  );
  return true;
}

/** Places served from the line that the estimate learns from (the newest). */
const SERVED_KEPT = 20;
/** Places served longer ago than this say nothing of how fast the line moves now. */
const SERVED_WINDOW_MS = 60 * 60_000;

/**
 * How long each place in the line takes, as the line has recently moved: the time since the
 * oldest of the places served within the last hour, shared among the intervals since (a line
 * that stopped moving makes the figure grow). With fewer than three
 * such, the configured guess; never below 10 s nor above four times the guess (a line that has
 * not moved for a long time is not told "days").
 */
export function secondsPerPlace(cfg: AllocatorConfig, s: AllocState, now: Date): number {
  const recent = (s.servedAt ?? []).filter(
    (t) => now.getTime() - Date.parse(t) <= SERVED_WINDOW_MS,
  );
  if (recent.length < 3) return cfg.estimateSecondsPerPosition;
  const span = (now.getTime() - Date.parse(recent[0]!)) / 1_000;
  return Math.min(
    cfg.estimateSecondsPerPosition * 4,
    Math.max(10, Math.round(span / (recent.length - 1))),
  );
}

export function tellPosition(cfg: AllocatorConfig, st: Step, ctx: HandlerContext, i: number): void {
  const q = st.s.queue[i];
  if (q === undefined) return;
  st.emit.push(
    emit(SessionQueued, cmdSubject(ActorKinds.session, q.playerId, 'queued'), {
      sessionId: q.sessionId,
      position: i + 1,
      estimateSeconds: (i + 1) * secondsPerPlace(cfg, st.s, ctx.now),
    }),
  );
}

/**
 * The line moved by `moved` places (negative: back) for everyone from index `from` on. Not
 * everyone is told every time — a release would otherwise send a message to every queued
 * player: the first ten are, and the others when their position crosses a multiple of ten.
 */
export function tellMoved(
  cfg: AllocatorConfig,
  st: Step,
  ctx: HandlerContext,
  from: number,
  moved: number,
): void {
  for (let i = from; i < st.s.queue.length; i++) {
    const now = i + 1;
    const before = now + moved;
    if (now <= 10 || Math.floor((before - 1) / 10) !== Math.floor((now - 1) / 10)) {
      tellPosition(cfg, st, ctx, i);
    }
  }
}

/**
 * Serves the queue in order: the head waits for a fit, nobody jumps ahead of someone who
 * wants what they want. A player who takes Spot only and waits for it does not hold back
 * those behind who take On-Demand too (they could never have the On-Demand rig the head
 * refuses); once someone taking any tier waits, everyone behind waits. Before Azure's first
 * quota report nobody was told a place in line (there was nothing to judge by): then everyone
 * still waiting is told theirs.
 */
export function serveQueue(
  cfg: AllocatorConfig,
  st: Step,
  ctx: HandlerContext,
  firstReport = false,
): void {
  const served: number[] = [];
  let spotFull = false;
  for (let i = 0; i < st.s.queue.length; i++) {
    const q = st.s.queue[i]!;
    if (q.spotOnly === true && spotFull) continue;
    if (tryPlace(cfg, st, q, ctx)) served.push(i);
    else if (q.spotOnly === true) spotFull = true;
    else break;
  }
  dequeueAt(st.s, served);
  if (served.length > 0) {
    const at = iso(ctx.now);
    st.s.servedAt = [...(st.s.servedAt ?? []), ...served.map(() => at)].slice(-SERVED_KEPT);
  }
  if (firstReport) st.s.queue.forEach((_, i) => tellPosition(cfg, st, ctx, i));
  else if (served.length === served.at(-1)! + 1) tellMoved(cfg, st, ctx, 0, served.length);
  else if (served.length > 0) tellAll(cfg, st, ctx, served[0]!);
  const warm = nextWarmUp(st.s, ctx.now);
  if (st.s.queue.length > 0 && warm !== undefined) st.timers.push({ name: 'warm', at: warm });
}

/** After places left the line out of order: each from `from` on is told its place again. */
function tellAll(cfg: AllocatorConfig, st: Step, ctx: HandlerContext, from: number): void {
  for (let i = from; i < st.s.queue.length; i++) tellPosition(cfg, st, ctx, i);
}

/**
 * Must a new request wait in line rather than take a rig now? Yes behind anyone who would
 * take what it would; a request taking any tier may go past a line of Spot-only players (they
 * wait for Spot, and it may get On-Demand now).
 */
export function waitsInLine(s: AllocState, q: QueueEntry): boolean {
  if (s.queue.length === 0) return false;
  return q.spotOnly === true || s.queue.some((e) => e.spotOnly !== true);
}

export function enqueue(
  cfg: AllocatorConfig,
  st: Step,
  q: QueueEntry,
  ctx: HandlerContext,
  /** Back in line by when it asked (a request whose rig failed), not at the end. */
  byArrival = false,
): void {
  let at = st.s.queue.length;
  if (byArrival) at = enqueueByArrival(st.s, q);
  else enqueueBack(st.s, q);
  st.emit.push(decided(ctx, 'queued', { sessionId: q.sessionId }));
  // Before Azure's first quota report the request waits quietly (serveQueue tells it then).
  const told = st.s.usageAt !== undefined;
  if (told) {
    tellPosition(cfg, st, ctx, at);
    tellMoved(cfg, st, ctx, at + 1, -1);
  }
  const warm = nextWarmUp(st.s, ctx.now);
  if (warm !== undefined) st.timers.push({ name: 'warm', at: warm });
}

export function refresh(st: Step, ctx: HandlerContext): void {
  if (st.s.refreshing) return;
  st.s = { ...st.s, refreshing: true };
  st.emit.push(emit(AzureRefresh, outAzureSubject(ctx.key), { usage: true, inventory: true }));
}

export function retryLater(
  st: Step,
  vmName: string,
  r: Reservation,
  delayMs: number,
  ctx: HandlerContext,
): void {
  putReservation(st.s, vmName, { ...r, attempts: r.attempts + 1 });
  st.timers.push({ name: `retry:${vmName}`, at: new Date(ctx.now.getTime() + delayMs) });
}

/** A request the drained region will not serve: the session goes back to idle, told why. */
export function refuse(
  st: Step,
  ctx: HandlerContext,
  sessionId: string,
  playerId: string,
  reason: string,
): void {
  st.emit.push(
    decided(ctx, 'failed', { sessionId, detail: `region draining: ${reason}` }),
    emit(SessionAllocFailed, cmdSubject(ActorKinds.session, playerId, 'alloc_failed'), {
      sessionId,
      reason: `the ${ctx.key} region is closed for new sessions (${reason})`,
    }),
  );
}

/** An eviction: the Spot candidate that lost the VM is cold for `coldMs`, as after a capacity error. */
export function coolEvicted(
  cfg: AllocatorConfig,
  st: Step,
  ctx: HandlerContext,
  r: { sessionId: string; candidate: string },
): void {
  if (cfg.candidates.find((c) => c.id === r.candidate)?.tier !== 'spot') return;
  st.s = {
    ...st.s,
    cold: { ...st.s.cold, [r.candidate]: iso(new Date(ctx.now.getTime() + cfg.coldMs)) },
  };
  st.emit.push(
    decided(ctx, 'cold', { sessionId: r.sessionId, candidate: r.candidate, detail: 'evicted' }),
  );
}

/**
 * The session gives up what it holds: its place in line, and its VMs. Only those of rounds
 * before `before`, when given (a newer round's request replaces what an older one left), and
 * up to `upTo` (a release names its round: one that arrives late must not take a newer round's
 * VM). A VM being created is deleted when its create reports (`Reservation.release`); one
 * evicted cools its Spot candidate; one a player let go warms its candidate once deleted
 * (`frees`).
 */
export function letGo(
  cfg: AllocatorConfig,
  st: Step,
  ctx: HandlerContext,
  sessionId: string,
  how: { reason: string; before?: number; upTo?: number },
): { queuedAt: number; held: number } {
  const inRange = (round: number): boolean =>
    (how.before === undefined || round < how.before) &&
    (how.upTo === undefined || round <= how.upTo);
  // The index first: a request scanning the whole line would make a burst quadratic.
  const waiting =
    isQueued(st.s, sessionId) &&
    st.s.queue.some((q) => q.sessionId === sessionId && inRange(q.allocation));
  const queuedAt = waiting ? dequeueSession(st.s, sessionId) : -1;
  if (queuedAt >= 0) tellMoved(cfg, st, ctx, queuedAt, 1);
  const mine = reservationsOf(st.s, sessionId).filter(([, r]) => inRange(r.allocation));
  const evicted = how.reason === 'evicted';
  for (const [vmName, was] of mine) {
    // Whichever of them goes last tells the session its release is done.
    const r =
      how.upTo === undefined || (was.releasedUpTo ?? 0) >= how.upTo
        ? was
        : { ...was, releasedUpTo: how.upTo };
    if (r !== was) putReservation(st.s, vmName, r);
    if (r.status === 'deleting' || r.release === true) continue;
    // Azure took a Spot VM back: that candidate is short of capacity, so the resume
    // that follows (and others meanwhile) try the next one while it is cold.
    if (evicted && r.status === 'running') coolEvicted(cfg, st, ctx, r);
    if (r.status === 'creating') putReservation(st.s, vmName, { ...r, release: true });
    else startDelete(st, ctx, vmName, r, !evicted && how.before === undefined);
  }
  return { queuedAt, held: mine.length };
}
