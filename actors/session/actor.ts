/**
 * The session actor: one per player, owner of that player's session lifecycle
 * (idle → starting → provisioning → ready → playing → stopping → idle, with queued,
 * evicted → resuming). It talks to billing and the allocator only through messages.
 */
import {
  ActorKinds,
  stopCallbackData,
  BillingMeterOpen,
  BillingMeterResume,
  SessionAdmission,
  SessionAgentReady,
  SessionAllocFailed,
  SessionAllocated,
  SessionChanged,
  SessionDiskArchived,
  SessionDiskFound,
  SessionDiskMissing,
  SessionHeartbeat,
  SessionPreempt,
  SessionQueued,
  SessionStart,
  SessionSettings,
  SessionStatus,
  SessionStop,
  SessionVmCheck,
  SessionVmReleased,
  TimerFired,
  cmdSubject,
  evtSubject,
} from '../../contracts/index.ts';
import { defineActor, emit } from '../runtime/index.ts';
import {
  SessionState,
  defaultSessionConfig,
  initialSessionState,
  type SessionConfig,
} from './state.ts';
import { texts } from './texts.ts';
import { diskFound, diskMissing } from './disk.ts';

import {
  ACTIVE,
  answer,
  at,
  changed,
  disowned,
  ignore,
  noticeTime,
  idleTimers,
  iso,
  later,
  matches,
  news,
  roundKey,
  tell,
  type Result,
} from './steps.ts';
import { inputOrder } from './input-order.ts';
import { settings } from './tier.ts';
import { onAdmission } from './admission.ts';
import { onTimer } from './timers.ts';
import { allocationFailed, evicted, onStop, stopped } from './stopping.ts';
import { onStart } from './start.ts';

/** A disk archive refused (the disk still in use) is tried again this much later. */
const DISK_ARCHIVE_RETRY_MS = 3_600_000;

export function createSessionActor(cfg: SessionConfig = defaultSessionConfig) {
  return defineActor({
    kind: ActorKinds.session,
    state: SessionState,
    initial: initialSessionState,
    messages: [
      SessionStart,
      SessionStop,
      SessionStatus,
      SessionSettings,
      SessionAdmission,
      SessionAllocated,
      SessionQueued,
      SessionAllocFailed,
      SessionAgentReady,
      SessionHeartbeat,
      SessionPreempt,
      SessionVmReleased,
      SessionVmCheck,
      SessionDiskArchived,
      SessionDiskMissing,
      SessionDiskFound,
    ],
    handle(current, msg, ctx): Result {
      let s = current;
      if (msg.type === SessionStart.type || msg.type === SessionStop.type) {
        const order = inputOrder(s, msg.inputSeq, ctx.now);
        if (order === 'stale')
          return ignore(s, `${msg.type} older than an input applied just before`);
        s = order;
      }
      switch (msg.type) {
        case SessionStart.type:
          return onStart(cfg, s, ctx, msg);
        case SessionAdmission.type:
          return onAdmission(cfg, s, ctx, msg);
        case SessionAllocated.type: {
          // In provisioning: the allocator fell back to another candidate (capacity error).
          const waiting = ['starting', 'queued', 'resuming'].includes(s.phase);
          const fallback = s.phase === 'provisioning' && s.vmName !== msg.vmName;
          if (!matches(s, msg.sessionId) || !(waiting || fallback)) {
            return (
              disowned(s, ctx, msg, 'stale_allocation') ??
              ignore(s, `allocation of ${msg.vmName} in ${s.phase}`)
            );
          }
          const next: SessionState = {
            ...s,
            phase: 'provisioning',
            tier: msg.tier,
            pricePerHourPaise: msg.pricePerHourPaise,
            vmName: msg.vmName,
            size: msg.size,
            region: msg.region,
            diskZone: s.diskZone ?? msg.zone,
            queuePosition: undefined,
          };
          return {
            state: next,
            emit: [
              changed(ctx, next, s.phase),
              // Served after a wait in line: news (the player may have left the chat).
              ...(s.phase === 'queued'
                ? news(s.chatId, texts.allocated(next), roundKey(next))
                : tell(s.chatId, texts.allocated(next), roundKey(next))),
              // A new price while booting is news (an edit makes no notification).
              ...(fallback && msg.pricePerHourPaise !== s.pricePerHourPaise
                ? tell(s.chatId, texts.fellBack(s, next))
                : []),
            ],
            timers: [
              {
                name: 'provision_timeout',
                at: at(ctx, cfg.provisionTimeoutMs),
                data: { sessionId: s.sessionId },
              },
            ],
          };
        }
        case SessionQueued.type: {
          const waiting = ['starting', 'queued', 'resuming', 'provisioning'].includes(s.phase);
          if (!matches(s, msg.sessionId) || !waiting) {
            return ignore(s, `queue place for ${msg.sessionId} in ${s.phase} of ${s.sessionId}`);
          }
          const next: SessionState = { ...s, phase: 'queued', queuePosition: msg.position };
          const why =
            s.spotOnlyForBalance === true ? 'balance' : s.spotOnly === true ? 'spot_only' : 'busy';
          return {
            state: next,
            emit: [
              ...(s.phase === 'queued' ? [] : [changed(ctx, next, s.phase)]),
              // Back in line after a rig was promised ("Booting…") is news, not an edit.
              ...(s.phase === 'provisioning' ? news : tell)(
                s.chatId,
                texts.queued(msg.position, msg.estimateSeconds, why),
                roundKey(s),
              ),
            ],
          };
        }
        case SessionAllocFailed.type: {
          if (!matches(s, msg.sessionId) || !ACTIVE.includes(s.phase))
            return ignore(s, `alloc_failed for ${msg.sessionId} in ${s.phase}`);
          return allocationFailed(cfg, s, ctx, msg.reason);
        }
        case SessionAgentReady.type: {
          if (!matches(s, msg.sessionId) || s.phase !== 'provisioning' || s.vmName !== msg.vmName)
            return ignore(
              s,
              `ready from ${msg.vmName} (${msg.sessionId}) in ${s.phase} on ${s.vmName}`,
            );
          const resumed = s.evictedAt !== undefined;
          const next: SessionState = {
            ...s,
            phase: 'ready',
            connect: { host: msg.host, port: msg.port, pin: msg.pin },
            readyAt: iso(ctx.now),
            firstReadyAt: s.firstReadyAt ?? iso(ctx.now),
            lastHeartbeatAt: iso(ctx.now),
            meterOpen: true,
            diskState: 'live',
          };
          const meter =
            resumed && s.meterOpen
              ? emit(BillingMeterResume, cmdSubject(ActorKinds.billing, ctx.key, 'meter_resume'), {
                  sessionId: s.sessionId ?? '',
                  tier: s.tier ?? 'spot',
                  pricePerHourPaise: s.pricePerHourPaise ?? 0,
                  at: iso(ctx.now),
                })
              : emit(BillingMeterOpen, cmdSubject(ActorKinds.billing, ctx.key, 'meter_open'), {
                  sessionId: s.sessionId ?? '',
                  tier: s.tier ?? 'spot',
                  pricePerHourPaise: s.pricePerHourPaise ?? 0,
                  at: iso(ctx.now),
                  ...(s.chatId === undefined ? {} : { chatId: s.chatId }),
                });
          return {
            state: next,
            emit: [
              changed(ctx, next, s.phase, resumed ? 'resumed' : undefined),
              meter,
              ...tell(s.chatId, resumed ? texts.resumed(next) : texts.ready(next), undefined, [
                [{ text: 'Stop', data: stopCallbackData(s.sessionId) }],
              ]),
            ],
            timers: [
              { name: 'provision_timeout', cancel: true },
              {
                name: 'hb_lost',
                at: at(ctx, cfg.heartbeatLossMs),
                data: { sessionId: s.sessionId },
              },
              ...idleTimers(cfg, ctx.now.getTime(), next),
            ],
          };
        }
        case SessionHeartbeat.type: {
          if (
            !matches(s, msg.sessionId) ||
            !['ready', 'playing'].includes(s.phase) ||
            s.vmName !== msg.vmName
          ) {
            return ignore(
              s,
              `heartbeat from ${msg.vmName} (${msg.sessionId}) in ${s.phase} on ${s.vmName}`,
            );
          }
          const lastInput = msg.lastInputAt ?? s.lastInputAt;
          const playing =
            s.phase === 'playing' || (lastInput !== undefined && lastInput >= (s.readyAt ?? ''));
          const next: SessionState = {
            ...s,
            phase: playing ? 'playing' : s.phase,
            // A heartbeat sent before one already handled (or before ready) moves nothing back:
            // an eviction is billed to the last sign of life, never before time already played.
            lastHeartbeatAt: later(s.lastHeartbeatAt, msg.at),
            ...(lastInput === undefined ? {} : { lastInputAt: lastInput }),
          };
          const since = Date.parse(lastInput ?? s.readyAt ?? iso(ctx.now));
          return {
            state: next,
            emit: next.phase !== s.phase ? [changed(ctx, next, s.phase)] : [],
            timers: [
              {
                name: 'hb_lost',
                at: at(ctx, cfg.heartbeatLossMs),
                data: { sessionId: s.sessionId },
              },
              // Only new input moves the idle timers. Setting them again to the same time
              // would re-arm a warning that already fired: one more warning per heartbeat.
              ...(lastInput === s.lastInputAt ? [] : idleTimers(cfg, since, next)),
            ],
          };
        }
        case SessionPreempt.type: {
          if (!matches(s, msg.sessionId) || s.vmName !== msg.vmName)
            return ignore(s, `preempt of ${msg.vmName} (${msg.sessionId}), not ${s.vmName}`);
          if (!['provisioning', 'ready', 'playing'].includes(s.phase))
            return ignore(s, `preempt of ${msg.vmName} in ${s.phase}`);
          // Billing stops at the notice: the player is never charged for the eviction itself,
          // nor for the time the report took to arrive (a backlog, a worker's failover).
          return evicted(cfg, s, ctx, noticeTime(s, ctx, msg.at), 'preempted');
        }
        case SessionStop.type:
          return onStop(cfg, s, ctx, msg);
        case SessionVmCheck.type:
          return disowned(s, ctx, msg, 'not_owned') ?? { state: s };
        case SessionVmReleased.type: {
          // The reconciler found this session's VM gone from Azure (deleted or evicted with no
          // notice): resume as after an eviction, billed up to the last sign of life.
          if (
            ['provisioning', 'ready', 'playing'].includes(s.phase) &&
            matches(s, msg.sessionId) &&
            msg.vmName !== undefined &&
            s.vmName === msg.vmName
          ) {
            return evicted(
              cfg,
              s,
              ctx,
              new Date(Date.parse(s.lastHeartbeatAt ?? iso(ctx.now))),
              'vm_gone',
            );
          }
          if (s.phase !== 'stopping' || !matches(s, msg.sessionId))
            return ignore(s, `vm_released for ${msg.sessionId} in ${s.phase}`);
          // An evicted round's VM deleted while the last one still is, or a late release of
          // that round: the session ends with its last VM, which may still hold the disk.
          if ((msg.allocation ?? s.allocation) < s.allocation || (msg.stillHeld ?? 0) > 0)
            return ignore(
              s,
              `vm_released of round ${msg.allocation} for ${msg.sessionId} stopping round ${s.allocation}, ${msg.stillHeld} VM(s) still held`,
            );
          return stopped(cfg, s, ctx);
        }
        case SessionSettings.type:
          return settings(s, msg);
        case SessionStatus.type:
          return {
            state: s,
            emit: [
              emit(SessionChanged, evtSubject(ActorKinds.session, ctx.key, 'status'), {
                phase: s.phase,
                at: iso(ctx.now),
                ...(s.sessionId === undefined ? {} : { sessionId: s.sessionId }),
              }),
              ...answer(msg.chatId ?? s.chatId, texts.status(s), 'status'),
            ],
          };
        case SessionDiskArchived.type: {
          if (!msg.ok) {
            // Not archived (the disk still in use: a VM being deleted holds it). Still unused
            // an hour from now, it is tried again; a start meanwhile cancels that.
            const retry = s.phase === 'idle' && s.diskState === 'live';
            return {
              state: s,
              ignored: `disk not archived: ${msg.reason ?? 'no reason given'}${retry ? '; tried again in an hour' : ''}`,
              ...(retry
                ? { timers: [{ name: 'disk_archive', at: at(ctx, DISK_ARCHIVE_RETRY_MS) }] }
                : {}),
            };
          }
          return {
            state: { ...s, diskState: 'archived' },
            emit: tell(s.chatId, texts.diskArchived),
          };
        }
        case SessionDiskMissing.type:
          return diskMissing(s, msg, ctx);
        case SessionDiskFound.type:
          return diskFound(cfg, s, msg, ctx);
        case TimerFired.type:
          return onTimer(cfg, s, msg, ctx);
      }
    },
  });
}

export const sessionActor = createSessionActor();
