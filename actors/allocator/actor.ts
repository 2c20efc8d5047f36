/**
 * The VM allocator: one actor per region serializes every quota and fallback decision, so
 * no two requests can spend the same quota. Azure work is asked for as effects on
 * `respawn.out.azure.<region>`; its results come back as this actor's commands.
 */
import {
  ActorKinds,
  AllocCreateResult,
  AllocDeleteResult,
  AllocDiskRound,
  AllocInventory,
  AllocRelease,
  AllocRequest,
  AllocUsage,
  AllocDrain,
  SessionAllocFailed,
  TimerFired,
  cmdSubject,
} from '../../contracts/index.ts';
import { defineActor, emit, type HandlerResult } from '../runtime/index.ts';
import { DISK_TIMER, ensureDiskRounds, startDiskRound } from './disk-reconcile.ts';
import {
  clearQueue,
  dropReservation,
  forgetReleased,
  knownRequest,
  laterRound,
  rememberReleased,
  releasedRound,
  putReservation,
} from './book.ts';
import {
  letGo,
  warmFreed,
  createEffect,
  decided,
  deleteEffect,
  enqueue,
  iso,
  refresh,
  refuse,
  retryLater,
  startDelete,
  serveQueue,
  tryPlace,
  roundCovered,
  vmReleased,
  waitsInLine,
  type Step,
} from './steps.ts';
import { reconcile } from './vm-reconcile.ts';
import {
  AllocState,
  defaultAllocatorConfig,
  initialAllocState,
  RELEASED_KEEP_MS,
  type AllocatorConfig,
  type QueueEntry,
} from './state.ts';

type Result = HandlerResult<AllocState>;

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
          const later = laterRound(st.s, msg.sessionId, msg.allocation);
          if (later !== undefined) {
            return {
              ...done(),
              ignored: `request of session ${msg.sessionId} round ${msg.allocation} after its round ${later}`,
            };
          }
          const released = releasedRound(st.s, msg.sessionId);
          if (released !== undefined && msg.allocation <= released) {
            return {
              ...done(),
              ignored: `session ${msg.sessionId} released round ${released} before its request arrived`,
            };
          }
          // A newer round replaces what the session still has of an older one (its release
          // lost or still on its way): one place in line, one VM at most.
          letGo(cfg, st, ctx, msg.sessionId, { reason: 'superseded', before: msg.allocation });
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
            ...(msg.spotOnly === true ? { spotOnly: true as const } : {}),
          };
          // Past a line of Spot-only players only once they had their chance at Spot.
          if (st.s.queue.length > 0 && !waitsInLine(st.s, q)) serveQueue(cfg, st, ctx);
          if (waitsInLine(st.s, q) || !tryPlace(cfg, st, q, ctx)) enqueue(cfg, st, q, ctx);
          if (Object.keys(st.s.usage).length === 0) refresh(st, ctx);
          return done();
        }
        case AllocRelease.type: {
          const round = msg.allocation ?? 0;
          // Whether the request of the released round came first. It may not have (a release
          // and the request it ends, published from two batches, can arrive in either order;
          // an older round's VM may still be held): then that request must find this.
          const arrived = round > 0 && laterRound(st.s, msg.sessionId, round - 1) !== undefined;
          const { held } = letGo(cfg, st, ctx, msg.sessionId, {
            reason: msg.reason,
            ...(round > 0 ? { upTo: round } : {}),
          });
          if (round > 0 && !arrived) rememberReleased(st.s, msg.sessionId, round, ctx.now);
          if (held === 0) {
            st.emit.push(vmReleased(st, msg, round));
          }
          return done();
        }
        case AllocCreateResult.type: {
          const r = st.s.reservations[msg.vmName];
          if (r === undefined || r.status !== 'creating') return done();
          if (r.release === true) {
            // Made or not, nobody wants it any more (a failed create may have left parts).
            startDelete(st, ctx, msg.vmName, r);
            return done();
          }
          if (msg.ok) {
            putReservation(st.s, msg.vmName, { ...r, status: 'running' });
            return done();
          }
          const kind = msg.error?.kind ?? 'other';
          if (kind === 'capacity' || kind === 'quota') {
            dropReservation(st.s, msg.vmName);
            st.s.partials = { ...st.s.partials, [msg.vmName]: r.sessionId };
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
              queuedAt: r.queuedAt ?? r.since,
              ...(r.diskZone === undefined ? {} : { diskZone: r.diskZone }),
              ...(r.spotOnly === true ? { spotOnly: true as const } : {}),
            };
            // It keeps its place: in line by when it asked, if nothing else fits now.
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
              // A fault on Azure's side (5xx, timeouts) is not a refusal of what was asked.
              reason:
                kind === 'transient'
                  ? 'Azure kept failing on its side while creating the machine (try again in a few minutes)'
                  : 'the cloud refused to create the machine',
            }),
          );
          serveQueue(cfg, st, ctx);
          return done();
        }
        case AllocDeleteResult.type: {
          if (st.s.partials?.[msg.vmName] !== undefined) {
            // A failed create's VM: its name may be given again (Azure retries a PUT of a VM
            // it could not allocate, so a delete that failed leaves nothing in the way).
            const { [msg.vmName]: _gone, ...rest } = st.s.partials;
            st.s.partials = Object.keys(rest).length === 0 ? undefined : rest;
            return done();
          }
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
          warmFreed(st, ctx, r);
          st.emit.push(
            decided(ctx, 'released', { sessionId: r.sessionId, vmName: msg.vmName }),
            vmReleased(st, r, roundCovered(r), msg.vmName),
          );
          serveQueue(cfg, st, ctx);
          return done();
        }
        case AllocUsage.type: {
          const usage: AllocState['usage'] = {};
          const external: AllocState['external'] = {};
          for (const u of msg.usages) {
            usage[u.name] = { current: u.current, limit: u.limit };
            // Someone else's share is Azure's count less the VMs it surely counts of ours: the
            // running ones. A VM being created or deleted may be in Azure's count or not; taken
            // as someone else's, it is counted twice until the next report, never not at all.
            const ours = Object.values(st.s.reservations)
              .filter((r) => r.quotaName === u.name && r.status === 'running')
              .reduce((n, r) => n + r.cores, 0);
            external[u.name] = Math.max(0, u.current - ours);
          }
          forgetReleased(st.s, new Date(ctx.now.getTime() - RELEASED_KEEP_MS));
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
            if (r?.status === 'creating' && r.release === true) startDelete(st, ctx, vmName, r);
            else if (r?.status === 'creating') st.emit.push(createEffect(cfg, ctx, vmName, r));
            if (r?.status === 'deleting') st.emit.push(deleteEffect(ctx, vmName, r));
          }
          return done();
        }
      }
    },
  });
}

export const allocatorActor = createAllocatorActor();
