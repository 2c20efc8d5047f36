/**
 * The VM allocator: one actor per region serializes every quota and fallback decision, so
 * no two requests can spend the same quota. Azure work is asked for as effects on
 * `respawn.out.azure.<region>`; its results come back as this actor's commands.
 */
import {
  ActorKinds,
  AllocCreateResult,
  AllocDecided,
  AllocDeleteResult,
  AllocDiskRound,
  AllocInventory,
  AllocRelease,
  AllocRequest,
  AllocUsage,
  AllocDrain,
  AzureCreateVm,
  AzureDeleteVm,
  AzureRefresh,
  SessionAllocFailed,
  SessionAllocated,
  SessionQueued,
  SessionVmReleased,
  TimerFired,
  cmdSubject,
  evtSubject,
  outAzureSubject,
  playerDiskName,
} from '../../contracts/index.ts';
import {
  defineActor,
  emit,
  type Emission,
  type HandlerContext,
  type HandlerResult,
  type TimerOp,
} from '../runtime/index.ts';
import { DISK_TIMER, ensureDiskRounds, startDiskRound } from './disk-reconcile.ts';
import {
  clearQueue,
  dequeueFirst,
  dequeueSession,
  dropReservation,
  enqueueBack,
  enqueueFront,
  knownRequest,
  putReservation,
  reservationsOf,
} from './book.ts';
import { nextWarmUp, pickCandidate, reservationFor } from './place.ts';
import {
  AllocState,
  defaultAllocatorConfig,
  initialAllocState,
  type AllocatorConfig,
  type QueueEntry,
  type Reservation,
} from './state.ts';

type Result = HandlerResult<AllocState>;

interface Step {
  s: AllocState;
  emit: Emission[];
  timers: TimerOp[];
}

const iso = (d: Date): string => d.toISOString();

type Decision = 'reserved' | 'queued' | 'cold' | 'released' | 'failed' | 'orphan';

function decided(ctx: HandlerContext, decision: Decision, extra: Record<string, string>): Emission {
  return emit(AllocDecided, evtSubject(ActorKinds.alloc, ctx.key, decision), {
    decision,
    at: iso(ctx.now),
    ...extra,
  });
}

function createEffect(
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

function deleteEffect(
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

/** Tries to give `q` a VM now; false when no candidate fits. */
function tryPlace(cfg: AllocatorConfig, st: Step, q: QueueEntry, ctx: HandlerContext): boolean {
  const c = pickCandidate(cfg, st.s, q, ctx.now);
  if (c === undefined) return false;
  const { vmName, reservation } = reservationFor(q, c, ctx.now);
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

function tellPosition(cfg: AllocatorConfig, st: Step, i: number): void {
  const q = st.s.queue[i];
  if (q === undefined) return;
  st.emit.push(
    emit(SessionQueued, cmdSubject(ActorKinds.session, q.playerId, 'queued'), {
      sessionId: q.sessionId,
      position: i + 1,
      estimateSeconds: (i + 1) * cfg.estimateSecondsPerPosition,
    }),
  );
}

/**
 * The line moved by `moved` places (negative: back) for everyone from index `from` on. Not
 * everyone is told every time — a release would otherwise send a message to every queued
 * player: the first ten are, and the others when their position crosses a multiple of ten.
 */
function tellMoved(cfg: AllocatorConfig, st: Step, from: number, moved: number): void {
  for (let i = from; i < st.s.queue.length; i++) {
    const now = i + 1;
    const before = now + moved;
    if (now <= 10 || Math.floor((before - 1) / 10) !== Math.floor((now - 1) / 10)) {
      tellPosition(cfg, st, i);
    }
  }
}

/**
 * Serves the queue strictly in order: the head waits for a fit, nobody jumps ahead. Before
 * Azure's first quota report nobody was told a place in line (there was nothing to judge
 * by): then everyone still waiting is told theirs.
 */
function serveQueue(
  cfg: AllocatorConfig,
  st: Step,
  ctx: HandlerContext,
  firstReport = false,
): void {
  let served = 0;
  while (served < st.s.queue.length && tryPlace(cfg, st, st.s.queue[served]!, ctx)) served++;
  dequeueFirst(st.s, served);
  if (firstReport) st.s.queue.forEach((_, i) => tellPosition(cfg, st, i));
  else if (served > 0) tellMoved(cfg, st, 0, served);
  const warm = nextWarmUp(st.s, ctx.now);
  if (st.s.queue.length > 0 && warm !== undefined) st.timers.push({ name: 'warm', at: warm });
}

function enqueue(
  cfg: AllocatorConfig,
  st: Step,
  q: QueueEntry,
  ctx: HandlerContext,
  front = false,
): void {
  if (front) enqueueFront(st.s, q);
  else enqueueBack(st.s, q);
  st.emit.push(decided(ctx, 'queued', { sessionId: q.sessionId }));
  // Before Azure's first quota report the request waits quietly (serveQueue tells it then).
  const told = st.s.usageAt !== undefined;
  if (told && front) {
    tellPosition(cfg, st, 0);
    tellMoved(cfg, st, 1, -1);
  } else if (told) {
    tellPosition(cfg, st, st.s.queue.length - 1);
  }
  const warm = nextWarmUp(st.s, ctx.now);
  if (warm !== undefined) st.timers.push({ name: 'warm', at: warm });
}

function refresh(st: Step, ctx: HandlerContext): void {
  if (st.s.refreshing) return;
  st.s = { ...st.s, refreshing: true };
  st.emit.push(emit(AzureRefresh, outAzureSubject(ctx.key), { usage: true, inventory: true }));
}

function retryLater(
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
function refuse(
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

/** True once `since` (ISO) lies at least the grace period before now. */
function overdue(cfg: AllocatorConfig, since: string, ctx: HandlerContext): boolean {
  return ctx.now.getTime() - Date.parse(since) >= cfg.reconcileGraceMs;
}

/**
 * Compares Azure's list of our VMs with the reservations. A VM no reservation explains is
 * deleted once it has been seen so for the grace period (a crash left it running, and it
 * costs money every hour). A running reservation whose VM Azure no longer lists is dropped
 * after the same grace period: its quota is free again and the session is told its VM is
 * gone, so it resumes on another instead of waiting for heartbeats that will never come.
 */
function reconcile(
  cfg: AllocatorConfig,
  st: Step,
  ctx: HandlerContext,
  vms: readonly { name: string; sessionId?: string | undefined; purpose?: string | undefined }[],
): void {
  const listed = new Set(vms.map((v) => v.name));
  const orphans: Record<string, string> = {};
  for (const vm of vms) {
    if (vm.purpose !== 'respawn-session' || st.s.reservations[vm.name] !== undefined) continue;
    const since = st.s.orphans?.[vm.name] ?? iso(ctx.now);
    if (!overdue(cfg, since, ctx)) {
      orphans[vm.name] = since;
      continue;
    }
    st.emit.push(
      decided(ctx, 'orphan', {
        vmName: vm.name,
        ...(vm.sessionId === undefined ? {} : { sessionId: vm.sessionId }),
      }),
      deleteEffect(ctx, vm.name, {
        sessionId: vm.sessionId ?? 'unknown',
        nicName: `${vm.name}-nic`,
      }),
    );
  }
  const missing: Record<string, string> = {};
  let freed = false;
  for (const [vmName, r] of Object.entries(st.s.reservations)) {
    if (r.status !== 'running' || listed.has(vmName)) continue;
    const since = st.s.missing?.[vmName] ?? iso(ctx.now);
    if (!overdue(cfg, since, ctx)) {
      missing[vmName] = since;
      continue;
    }
    dropReservation(st.s, vmName);
    freed = true;
    st.emit.push(
      decided(ctx, 'released', { sessionId: r.sessionId, vmName, detail: 'VM gone from Azure' }),
      emit(SessionVmReleased, cmdSubject(ActorKinds.session, r.playerId, 'vm_released'), {
        sessionId: r.sessionId,
        vmName,
      }),
    );
  }
  st.s = { ...st.s, orphans, missing };
  if (freed) serveQueue(cfg, st, ctx);
}

export function createAllocatorActor(cfg: AllocatorConfig = defaultAllocatorConfig) {
  return defineActor({
    kind: ActorKinds.alloc,
    state: AllocState,
    initial: initialAllocState,
    // One hot key with thousands of reservations: changed in place (book.ts), not copied.
    mutatesState: true,
    messages: [
      AllocRequest,
      AllocRelease,
      AllocCreateResult,
      AllocDeleteResult,
      AllocUsage,
      AllocInventory,
      AllocDrain,
      AllocDiskRound,
    ],
    handle(state, msg, ctx): Result {
      const st: Step = { s: state, emit: [], timers: [] };
      const done = (): Result => ({ state: st.s, emit: st.emit, timers: st.timers });
      switch (msg.type) {
        case AllocRequest.type: {
          if (knownRequest(st.s, msg.sessionId, msg.allocation)) return done();
          if (st.s.draining !== undefined) {
            refuse(st, ctx, msg.sessionId, msg.playerId, st.s.draining.reason);
            return done();
          }
          const q: QueueEntry = {
            sessionId: msg.sessionId,
            playerId: msg.playerId,
            allocation: msg.allocation,
            tried: [],
            queuedAt: iso(ctx.now),
            ...(msg.diskZone === undefined ? {} : { diskZone: msg.diskZone }),
          };
          if (st.s.queue.length > 0 || !tryPlace(cfg, st, q, ctx)) enqueue(cfg, st, q, ctx);
          if (Object.keys(st.s.usage).length === 0) refresh(st, ctx);
          return done();
        }
        case AllocRelease.type: {
          const at = dequeueSession(st.s, msg.sessionId);
          if (at >= 0) tellMoved(cfg, st, at, 1);
          const mine = reservationsOf(st.s, msg.sessionId);
          for (const [vmName, r] of mine) {
            if (r.status === 'deleting') continue;
            putReservation(st.s, vmName, { ...r, status: 'deleting', attempts: 0 });
            st.emit.push(deleteEffect(ctx, vmName, r));
          }
          if (mine.length === 0) {
            st.emit.push(
              emit(SessionVmReleased, cmdSubject(ActorKinds.session, msg.playerId, 'vm_released'), {
                sessionId: msg.sessionId,
              }),
            );
          }
          return done();
        }
        case AllocCreateResult.type: {
          const r = st.s.reservations[msg.vmName];
          if (r === undefined || r.status !== 'creating') return done();
          if (msg.ok) {
            putReservation(st.s, msg.vmName, { ...r, status: 'running' });
            return done();
          }
          const kind = msg.error?.kind ?? 'other';
          if (kind === 'capacity' || kind === 'quota') {
            dropReservation(st.s, msg.vmName);
            st.s = {
              ...st.s,
              cold: { ...st.s.cold, [r.candidate]: iso(new Date(ctx.now.getTime() + cfg.coldMs)) },
            };
            st.emit.push(
              decided(ctx, 'cold', {
                sessionId: r.sessionId,
                candidate: r.candidate,
                detail: msg.error?.code ?? kind,
              }),
              deleteEffect(ctx, msg.vmName, r),
            );
            const q: QueueEntry = {
              sessionId: r.sessionId,
              playerId: r.playerId,
              allocation: r.allocation,
              tried: [...r.tried, r.candidate],
              queuedAt: r.since,
              ...(r.diskZone === undefined ? {} : { diskZone: r.diskZone }),
            };
            // It keeps its place: first in line if nothing else fits now.
            if (!tryPlace(cfg, st, q, ctx)) enqueue(cfg, st, { ...q, tried: [] }, ctx, true);
            return done();
          }
          if (kind === 'throttled' || (kind !== 'not_found' && r.attempts + 1 < cfg.maxAttempts)) {
            const delay = msg.error?.retryAfterMs ?? 1_000 * 2 ** r.attempts;
            retryLater(st, msg.vmName, r, delay, ctx);
            return done();
          }
          dropReservation(st.s, msg.vmName);
          st.emit.push(
            deleteEffect(ctx, msg.vmName, r),
            decided(ctx, 'failed', {
              sessionId: r.sessionId,
              vmName: msg.vmName,
              detail: msg.error?.code ?? kind,
            }),
            emit(SessionAllocFailed, cmdSubject(ActorKinds.session, r.playerId, 'alloc_failed'), {
              sessionId: r.sessionId,
              reason: 'the cloud refused to create the machine',
            }),
          );
          serveQueue(cfg, st, ctx);
          return done();
        }
        case AllocDeleteResult.type: {
          const r = st.s.reservations[msg.vmName];
          if (r === undefined) return done();
          if (!msg.ok && msg.error?.kind !== 'not_found') {
            retryLater(
              st,
              msg.vmName,
              r,
              msg.error?.retryAfterMs ?? 1_000 * 2 ** Math.min(r.attempts, 6),
              ctx,
            );
            return done();
          }
          dropReservation(st.s, msg.vmName);
          st.emit.push(
            decided(ctx, 'released', { sessionId: r.sessionId, vmName: msg.vmName }),
            emit(SessionVmReleased, cmdSubject(ActorKinds.session, r.playerId, 'vm_released'), {
              sessionId: r.sessionId,
              vmName: msg.vmName,
            }),
          );
          serveQueue(cfg, st, ctx);
          return done();
        }
        case AllocUsage.type: {
          const usage: AllocState['usage'] = {};
          const external: AllocState['external'] = {};
          for (const u of msg.usages) {
            usage[u.name] = { current: u.current, limit: u.limit };
            const ours = Object.values(st.s.reservations)
              .filter((r) => r.quotaName === u.name && r.status !== 'creating')
              .reduce((n, r) => n + r.cores, 0);
            external[u.name] = Math.max(0, u.current - ours);
          }
          const first = st.s.usageAt === undefined;
          st.s = { ...st.s, usage, external, usageAt: msg.at, refreshing: false };
          st.timers.push({ name: 'refresh', at: new Date(ctx.now.getTime() + cfg.refreshMs) });
          ensureDiskRounds(cfg, st, ctx);
          serveQueue(cfg, st, ctx, first);
          return done();
        }
        case AllocInventory.type: {
          reconcile(cfg, st, ctx, msg.vms);
          return done();
        }
        case AllocDiskRound.type:
          st.s = { ...st.s, disks: { suspects: msg.suspects } };
          return done();
        case AllocDrain.type: {
          if (!msg.draining) {
            const { draining: _was, ...rest } = st.s;
            st.s = rest;
            return done();
          }
          st.s = { ...st.s, draining: { since: iso(ctx.now), reason: msg.reason } };
          // Those waiting in line would never be served here: tell them now.
          for (const q of clearQueue(st.s)) refuse(st, ctx, q.sessionId, q.playerId, msg.reason);
          return done();
        }
        case TimerFired.type: {
          if (msg.name === 'refresh') {
            st.s = { ...st.s, refreshing: false };
            refresh(st, ctx);
          } else if (msg.name === 'warm') {
            serveQueue(cfg, st, ctx);
          } else if (msg.name === DISK_TIMER) {
            startDiskRound(cfg, st, ctx);
          } else if (msg.name.startsWith('retry:')) {
            const vmName = msg.name.slice('retry:'.length);
            const r = st.s.reservations[vmName];
            if (r?.status === 'creating') st.emit.push(createEffect(cfg, ctx, vmName, r));
            if (r?.status === 'deleting') st.emit.push(deleteEffect(ctx, vmName, r));
          }
          return done();
        }
      }
    },
  });
}

export const allocatorActor = createAllocatorActor();
