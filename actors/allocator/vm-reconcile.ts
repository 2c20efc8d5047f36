/**
 * The VM reconciler's step: Azure's list of Respawn's VMs against the allocator's
 * reservations (docs/sessions.md, "Reconciler").
 */
import { ActorKinds, SessionVmCheck, cmdSubject } from '../../contracts/index.ts';
import { emit, type HandlerContext } from '../runtime/index.ts';
import { dropReservation } from './book.ts';
import type { AllocatorConfig } from './state.ts';
import {
  decided,
  deleteEffect,
  iso,
  roundCovered,
  serveQueue,
  vmReleased,
  type Step,
} from './steps.ts';

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
 * A running VM past the grace period is also checked with its session (`vm_check`): a session
 * that ended, or whose record is gone, releases it, so a reservation alone cannot keep a VM
 * running for nobody.
 */
export function reconcile(
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
    if (r.status === 'running' && listed.has(vmName) && overdue(cfg, r.since, ctx)) {
      st.emit.push(
        emit(SessionVmCheck, cmdSubject(ActorKinds.session, r.playerId, 'vm_check'), {
          sessionId: r.sessionId,
          vmName,
          region: ctx.key,
        }),
      );
    }
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
      vmReleased(st, r, roundCovered(r), vmName),
    );
  }
  st.s = { ...st.s, orphans, missing };
  if (freed) serveQueue(cfg, st, ctx);
}
