import { describe, expect, it } from 'vitest';
import {
  AllocCreateResult,
  AllocDecided,
  AllocDrain,
  AllocDeleteResult,
  AllocInventory,
  AllocRelease,
  AllocRequest,
  AllocUsage,
  AzureCreateVm,
  AzureDeleteVm,
  AzureRefresh,
  SessionAllocFailed,
  SessionAllocated,
  SessionQueued,
  SessionVmCheck,
  SessionVmReleased,
  TimerFired,
  type MessageDef,
} from '../../contracts/index.ts';
import type { HandlerResult } from '../runtime/index.ts';
import { createAllocatorActor } from './actor.ts';
import { reservedCores, vmNameFor } from './place.ts';
import { playerDiskName, sessionOfPlayer, vmOfSession } from '../../contracts/index.ts';
import { defaultAllocatorConfig, initialAllocState, type AllocState } from './state.ts';

const cfg = { ...defaultAllocatorConfig, coldMs: 600_000 };
const actor = createAllocatorActor(cfg);
const T0 = new Date('2026-03-01T18:00:00Z');
const later = (ms: number): Date => new Date(T0.getTime() + ms);

function handle(
  s: AllocState,
  def: MessageDef,
  value: unknown,
  now = T0,
): HandlerResult<AllocState> {
  const msg = def.decode(def.encode(value));
  return actor.handle(s, msg as never, {
    kind: 'alloc',
    key: 'centralindia',
    now,
    msgId: 'm',
    subject: 'respawn.alloc.centralindia.cmd.x',
    redeliveries: 0,
  });
}
const of = <T extends string, V>(
  r: HandlerResult<unknown>,
  def: MessageDef<T, V>,
): (V & { type: T })[] =>
  (r.emit ?? []).filter((e) => e.type === def.type).map((e) => def.decode(e.data));

const usage = (spotLimit: number, odLimit: number, spotUsed = 0, odUsed = 0) => ({
  at: T0.toISOString(),
  usages: [
    { name: 'lowPriorityCores', current: spotUsed, limit: spotLimit },
    { name: 'standardNCASv3_T4Family', current: odUsed, limit: odLimit },
  ],
});
const req = (n: number, allocation = 1) => ({ sessionId: `s${n}`, playerId: `p${n}`, allocation });
const withQuota = (spot: number, od: number): AllocState =>
  handle(initialAllocState(), AllocUsage, usage(spot, od)).state;

describe('allocator actor', () => {
  it('drains a region: refuses new requests and tells those in line, until undrained', () => {
    let s = withQuota(4, 0);
    const a = handle(s, AllocRequest, req(1));
    s = handle(a.state, AllocRequest, req(2)).state; // s2 waits: room for one VM only
    expect(s.queue.map((q) => q.sessionId)).toEqual(['s2']);
    const d = handle(s, AllocDrain, { draining: true, reason: 'maintenance' });
    const failed = of(d, SessionAllocFailed);
    expect(failed.map((f) => f.sessionId)).toEqual(['s2']);
    expect(failed[0]!.reason).toMatch(/closed for new sessions \(maintenance\)/);
    expect(d.state.queue).toEqual([]);
    // The running VM is left alone.
    expect(Object.values(d.state.reservations).map((r) => r.sessionId)).toEqual(['s1']);
    const refused = handle(d.state, AllocRequest, req(3));
    expect(of(refused, AzureCreateVm)).toEqual([]);
    expect(of(refused, SessionAllocFailed).map((f) => f.sessionId)).toEqual(['s3']);
    expect(of(refused, AllocDecided).map((x) => x.decision)).toEqual(['failed']);
    const open = handle(refused.state, AllocDrain, { draining: false, reason: 'done' });
    expect(open.state.draining).toBeUndefined();
    const released = handle(open.state, AllocRelease, {
      sessionId: 's1',
      playerId: 'p1',
      reason: 'stopped',
    });
    const served = handle(released.state, AllocRequest, req(4));
    expect(of(served, SessionAllocFailed)).toEqual([]);
  });
  it('tells those still waiting their place once, when the first quota report leaves no room', () => {
    let s = initialAllocState();
    for (const n of [1, 2, 3]) s = handle(s, AllocRequest, req(n)).state;
    // Room for one Spot VM and no On-Demand.
    const r = handle(s, AllocUsage, usage(4, 0));
    expect(of(r, SessionAllocated).map((a) => a.sessionId)).toEqual(['s1']);
    expect(of(r, SessionQueued).map((q) => [q.sessionId, q.position])).toEqual([
      ['s2', 1],
      ['s3', 2],
    ]);
    // A later request is told its place at once.
    const later4 = handle(r.state, AllocRequest, req(4));
    expect(of(later4, SessionQueued).map((q) => [q.sessionId, q.position])).toEqual([['s4', 3]]);
  });

  it('holds requests quietly until Azure has reported quota, then serves the queue', () => {
    const r = handle(initialAllocState(), AllocRequest, req(1));
    expect(of(r, AzureRefresh)).toHaveLength(1);
    // Nothing to judge by yet: not "all GPUs are busy, you are number 1".
    expect(of(r, SessionQueued)).toEqual([]);
    expect(r.state.queue.map((q) => q.sessionId)).toEqual(['s1']);
    const served = handle(r.state, AllocUsage, usage(8, 8));
    expect(of(served, SessionQueued)).toEqual([]);
    expect(of(served, AzureCreateVm)).toEqual([
      expect.objectContaining({
        sessionId: 's1',
        size: 'Standard_NC4as_T4_v3',
        priority: 'spot',
        diskName: 'disk-p1',
      }),
    ]);
    expect(of(served, SessionAllocated)).toEqual([
      expect.objectContaining({ tier: 'spot', pricePerHourPaise: 3_000 }),
    ]);
    expect(served.state.queue).toEqual([]);
  });

  it('gives Spot first, then On-Demand, then queues in order with positions', () => {
    let s = withQuota(8, 4);
    const tiers: string[] = [];
    const queued: number[] = [];
    for (let n = 1; n <= 5; n++) {
      const r = handle(s, AllocRequest, req(n));
      s = r.state;
      tiers.push(...of(r, SessionAllocated).map((a) => a.tier));
      queued.push(...of(r, SessionQueued).map((q) => q.position));
    }
    expect(tiers).toEqual(['spot', 'spot', 'on_demand']);
    expect(queued).toEqual([1, 2]);
  });

  it('never reserves beyond quota, even under a burst of a thousand requests', () => {
    // 8 of 40 Spot cores used by someone else: room for 8 VMs of 4 cores.
    let s = handle(initialAllocState(), AllocUsage, usage(40, 0, 8)).state;
    let creates = 0;
    for (let n = 1; n <= 1000; n++) {
      const r = handle(s, AllocRequest, req(n));
      s = r.state;
      creates += of(r, AzureCreateVm).length;
    }
    expect(creates).toBe(8);
    expect(reservedCores(s, 'lowPriorityCores')).toBe(32);
    expect(s.queue).toHaveLength(992);
  });

  it('counts as its own, in a usage report, only the VMs Azure surely counts: running ones', () => {
    // 12 Spot cores. s1's VM runs, then is being deleted; Azure has already removed it when it
    // reports usage: 4 cores, all someone else's.
    let s = withQuota(12, 0);
    const a = handle(s, AllocRequest, req(1));
    const vm1 = of(a, AzureCreateVm)[0]!.vmName;
    s = handle(a.state, AllocCreateResult, { sessionId: 's1', vmName: vm1, ok: true }).state;
    s = handle(s, AllocRelease, { sessionId: 's1', playerId: 'p1', reason: 'player' }).state;
    s = handle(s, AllocUsage, usage(12, 0, 4)).state;
    let creates = 0;
    for (let n = 2; n <= 5; n++) {
      const r = handle(s, AllocRequest, req(n));
      s = r.state;
      creates += of(r, AzureCreateVm).length;
    }
    const done = handle(s, AllocDeleteResult, { sessionId: 's1', vmName: vm1, ok: true });
    creates += of(done, AzureCreateVm).length;
    // 12 − 4 (someone else's) = 8: two VMs, never three (16 cores in Azure).
    expect(creates).toBe(2);
    expect(reservedCores(done.state, 'lowPriorityCores')).toBe(8);
    // A report while a create may or may not be counted yet errs the safe way: the same.
    const r2 = handle(done.state, AllocUsage, usage(12, 0, 12));
    expect(of(handle(r2.state, AllocRequest, req(9)), AzureCreateVm)).toEqual([]);
  });

  it('ignores a repeated request for the same allocation', () => {
    const s = handle(withQuota(8, 8), AllocRequest, req(1)).state;
    const r = handle(s, AllocRequest, req(1));
    expect(r.emit).toEqual([]);
    expect(r.state).toEqual(s);
  });

  it('ignores a request of an older round than the session holds or waits with', () => {
    // s1 runs round 2 (a resume); round 1's request, redelivered late, must not get it a VM.
    let s = handle(withQuota(8, 0), AllocRequest, req(1, 2)).state;
    const late = handle(s, AllocRequest, req(1, 1));
    expect(late.ignored).toMatch(/round 1 after its round 2/);
    expect(late.emit ?? []).toEqual([]);
    expect(reservedCores(late.state, 'lowPriorityCores')).toBe(4);
    // The same while round 2 waits in line.
    s = handle(withQuota(0, 0), AllocRequest, req(2, 2)).state;
    expect(handle(s, AllocRequest, req(2, 1)).state.queue.map((q) => q.allocation)).toEqual([2]);
  });

  it('lets a newer round replace what the session still has of an older one', () => {
    // s1's round 1 waits in line; its round 2 arrives (the release between them lost).
    let s = handle(withQuota(0, 0), AllocRequest, req(1, 1)).state;
    s = handle(s, AllocRequest, req(1, 2)).state;
    expect(s.queue.map((q) => [q.sessionId, q.allocation])).toEqual([['s1', 2]]);
    // Round 1 holds a VM being created: deleted once its create reports; round 2 gets its own.
    const first = handle(withQuota(8, 0), AllocRequest, req(2, 1));
    const vm1 = of(first, AzureCreateVm)[0]!.vmName;
    const second = handle(first.state, AllocRequest, req(2, 2));
    const vm2 = of(second, AzureCreateVm)[0]!.vmName;
    expect(vm2).not.toBe(vm1);
    expect(second.state.reservations[vm1]).toMatchObject({ release: true });
    const made = handle(second.state, AllocCreateResult, {
      sessionId: 's2',
      vmName: vm1,
      ok: true,
    });
    expect(of(made, AzureDeleteVm).map((d) => d.vmName)).toEqual([vm1]);
  });

  it('refuses a request its release overtook, even while an older round’s VM is held', () => {
    // s1 runs round 1; evicted, it asks for round 2, then Stop releases round 2: the release
    // arrives first (published from a later batch, the request's publish retried late).
    const a = handle(withQuota(8, 0), AllocRequest, req(1, 1));
    const vm1 = of(a, AzureCreateVm)[0]!.vmName;
    let s = handle(a.state, AllocCreateResult, { sessionId: 's1', vmName: vm1, ok: true }).state;
    s = handle(s, AllocRelease, { ...req(1, 2), reason: 'player' }).state;
    const late = handle(s, AllocRequest, req(1, 2));
    expect(late.ignored).toMatch(/released round 2 before its request arrived/);
    expect(of(late, AzureCreateVm)).toEqual([]);
  });

  it('lets a late release of an older round leave the newer round’s VM alone', () => {
    const a = handle(withQuota(8, 0), AllocRequest, req(1, 1));
    const vm1 = of(a, AzureCreateVm)[0]!.vmName;
    const b = handle(a.state, AllocRequest, req(1, 2)); // replaces round 1 (deleted when made)
    const vm2 = of(b, AzureCreateVm)[0]!.vmName;
    const s = handle(b.state, AllocRelease, { ...req(1, 1), reason: 'evicted' }).state;
    expect(s.reservations[vm2]).toMatchObject({ status: 'creating' });
    expect(s.reservations[vm2]?.release).toBeUndefined();
    expect(s.reservations[vm1]).toMatchObject({ release: true });
  });

  it('tells a stopping session its release is done only once its last VM is gone, naming the round', () => {
    // Round 1 runs and is evicted; round 2's VM runs; the player stops before round 1's VM is
    // deleted.
    const a = handle(withQuota(8, 8), AllocRequest, req(1, 1));
    const vm1 = of(a, AzureCreateVm)[0]!.vmName;
    let s = handle(a.state, AllocCreateResult, { sessionId: 's1', vmName: vm1, ok: true }).state;
    s = handle(s, AllocRelease, { ...req(1, 1), reason: 'evicted' }).state;
    const b = handle(s, AllocRequest, req(1, 2));
    const vm2 = of(b, AzureCreateVm)[0]!.vmName;
    s = handle(b.state, AllocCreateResult, { sessionId: 's1', vmName: vm2, ok: true }).state;
    const stop = handle(s, AllocRelease, { ...req(1, 2), reason: 'player' });
    expect(of(stop, SessionVmReleased)).toEqual([]);
    // The evicted VM goes first: news of round 2 (released with it), one VM still held.
    const first = handle(stop.state, AllocDeleteResult, { sessionId: 's1', vmName: vm1, ok: true });
    expect(of(first, SessionVmReleased)).toEqual([
      expect.objectContaining({ vmName: vm1, allocation: 2, stillHeld: 1 }),
    ]);
    // A late release of round 1 finds nothing of that round, and says so for round 1 only.
    const late = handle(structuredClone(first.state), AllocRelease, {
      ...req(1, 1),
      reason: 'evicted',
    });
    expect(of(late, SessionVmReleased)).toEqual([
      expect.objectContaining({ allocation: 1, stillHeld: 1 }),
    ]);
    const last = handle(first.state, AllocDeleteResult, { sessionId: 's1', vmName: vm2, ok: true });
    expect(of(last, SessionVmReleased)).toEqual([
      expect.objectContaining({ vmName: vm2, allocation: 2, stillHeld: 0 }),
    ]);
  });

  it('never gives a new VM the name of a failed create’s VM still being deleted', () => {
    // s1's On-Demand create fails (Spot cold already): its VM is deleted, s1 waits in line.
    let s = handle(withQuota(0, 4), AllocRequest, req(1)).state;
    const first = Object.keys(s.reservations)[0]!;
    const failed = handle(s, AllocCreateResult, {
      sessionId: 's1',
      vmName: first,
      ok: false,
      error: { kind: 'capacity', code: 'AllocationFailed', message: 'x' },
    });
    expect(of(failed, AzureDeleteVm).map((d) => d.vmName)).toEqual([first]);
    // Capacity comes back (the cold time passed) before Azure reports that VM deleted.
    s = handle(failed.state, AllocUsage, usage(0, 4), later(cfg.coldMs + 1)).state;
    const retried = Object.keys(s.reservations);
    expect(retried).toHaveLength(1);
    expect(retried[0]).not.toBe(first);
    // The delete's report is the failed VM's: the new reservation stays.
    const gone = handle(s, AllocDeleteResult, { sessionId: 's1', vmName: first, ok: true });
    expect(Object.keys(gone.state.reservations)).toEqual(retried);
  });

  it('marks Spot cold on a capacity error and falls back to On-Demand for the same session', () => {
    const first = handle(withQuota(8, 8), AllocRequest, req(1));
    const vm = of(first, AzureCreateVm)[0]!.vmName;
    const r = handle(first.state, AllocCreateResult, {
      sessionId: 's1',
      vmName: vm,
      ok: false,
      error: { kind: 'capacity', code: 'SkuNotAvailable', message: 'no T4 spot' },
    });
    expect(of(r, AllocDecided).map((d) => d.decision)).toEqual(['cold', 'reserved']);
    expect(of(r, SessionAllocated)).toEqual([
      expect.objectContaining({ sessionId: 's1', tier: 'on_demand', pricePerHourPaise: 9_000 }),
    ]);
    expect(of(r, AzureDeleteVm).map((d) => d.vmName)).toEqual([vm]); // clean up a partial VM
    expect(reservedCores(r.state, 'lowPriorityCores')).toBe(0);
    // While cold, the next player goes straight to On-Demand; after coldMs, Spot again.
    const next = handle(r.state, AllocRequest, req(2), later(1_000));
    expect(of(next, SessionAllocated)[0]!.tier).toBe('on_demand');
    const warm = handle(next.state, AllocRequest, req(3), later(cfg.coldMs + 1));
    expect(of(warm, SessionAllocated)[0]!.tier).toBe('spot');
  });

  it('marks Spot cold when Azure evicts a VM, so the resume (and others meanwhile) go On-Demand', () => {
    const running = (): AllocState => {
      const a = handle(withQuota(8, 8), AllocRequest, req(1));
      const vm = of(a, AzureCreateVm)[0]!.vmName;
      return handle(a.state, AllocCreateResult, { sessionId: 's1', vmName: vm, ok: true }).state;
    };
    const evicted = handle(running(), AllocRelease, {
      sessionId: 's1',
      playerId: 'p1',
      reason: 'evicted',
    });
    expect(of(evicted, AllocDecided).map((d) => [d.decision, d.candidate, d.detail])).toEqual([
      ['cold', 'spotnc4', 'evicted'],
    ]);
    // The evicted VM's delete does not warm it: Azure took that capacity back.
    const evictedVm = of(evicted, AzureDeleteVm)[0]!.vmName;
    const deleted = handle(evicted.state, AllocDeleteResult, {
      sessionId: 's1',
      vmName: evictedVm,
      ok: true,
    });
    expect(of(deleted, AllocDecided).map((d) => d.decision)).not.toContain('warm');
    expect(deleted.state.cold.spotnc4).toBeDefined();
    const resume = handle(evicted.state, AllocRequest, req(1, 2));
    expect(of(resume, AzureCreateVm).map((c) => c.priority)).toEqual(['regular']);
    expect(of(handle(resume.state, AllocRequest, req(2)), AzureCreateVm)[0]!.priority).toBe(
      'regular',
    );
    // Warm again after coldMs.
    expect(
      of(handle(resume.state, AllocRequest, req(3), later(cfg.coldMs)), AzureCreateVm)[0]!.priority,
    ).toBe('spot');
    // A player's own stop says nothing about capacity.
    const stopped = handle(running(), AllocRelease, {
      sessionId: 's1',
      playerId: 'p1',
      reason: 'player',
    });
    expect(of(stopped, AllocDecided).map((d) => d.decision)).not.toContain('cold');
    expect(of(handle(stopped.state, AllocRequest, req(2)), AzureCreateVm)[0]!.priority).toBe(
      'spot',
    );
  });

  it('queues the player first in line when every candidate fails, and serves them when capacity frees', () => {
    let s = withQuota(4, 4);
    const a = handle(s, AllocRequest, req(1));
    s = handle(a.state, AllocCreateResult, {
      sessionId: 's1',
      vmName: of(a, AzureCreateVm)[0]!.vmName,
      ok: false,
      error: { kind: 'capacity', code: 'AllocationFailed', message: 'x' },
    }).state;
    const od = Object.keys(s.reservations)[0]!;
    const b = handle(s, AllocCreateResult, {
      sessionId: 's1',
      vmName: od,
      ok: false,
      error: { kind: 'quota', code: 'OperationNotAllowed', message: 'quota' },
    });
    expect(of(b, SessionQueued)).toEqual([
      expect.objectContaining({ sessionId: 's1', position: 1 }),
    ]);
    const warm = handle(
      b.state,
      TimerFired,
      {
        timerId: '1',
        name: 'warm',
        dueAt: later(cfg.coldMs).toISOString(),
        firedAt: later(cfg.coldMs).toISOString(),
      },
      later(cfg.coldMs + 1),
    );
    expect(of(warm, SessionAllocated)).toEqual([
      expect.objectContaining({ sessionId: 's1', tier: 'spot' }),
    ]);
  });

  it('puts a request whose rigs all failed back in line by when it asked, never ahead of earlier ones', () => {
    let s = withQuota(8, 8);
    const capacity = { kind: 'capacity' as const, code: 'AllocationFailed', message: 'x' };
    const fail = (st: AllocState, sessionId: string, vmName: string, at: Date) =>
      handle(st, AllocCreateResult, { sessionId, vmName, ok: false, error: capacity }, at);
    // s1 asks first; its Spot create fails, it goes On-Demand.
    const a = handle(s, AllocRequest, req(1));
    const r1 = fail(a.state, 's1', of(a, AzureCreateVm)[0]!.vmName, later(1_000));
    const od1 = of(r1, AzureCreateVm).find((c) => c.priority !== 'spot')!.vmName;
    // s2 asks three seconds later: Spot is cold, On-Demand not yet.
    const b = handle(r1.state, AllocRequest, req(2), later(3_000));
    const od2 = of(b, AzureCreateVm)[0]!.vmName;
    // Both On-Demand creates fail, s1's first: both wait, s1 ahead.
    s = fail(b.state, 's1', od1, later(10_000)).state;
    const last = fail(s, 's2', od2, later(11_000));
    expect(last.state.queue.map((q) => q.sessionId)).toEqual(['s1', 's2']);
    expect(of(last, SessionQueued)).toEqual([
      expect.objectContaining({ sessionId: 's2', position: 2 }),
    ]);
  });

  it('warms a cold candidate when a VM of it that ran is deleted, and serves the line at once', () => {
    // s1 runs On-Demand (Spot had no capacity); s2's On-Demand create then fails for capacity:
    // both candidates cold, s2 waits.
    let s = withQuota(8, 8);
    const failSpot = (state: AllocState, sessionId: string, vmName: string) =>
      handle(state, AllocCreateResult, {
        sessionId,
        vmName,
        ok: false,
        error: { kind: 'capacity', code: 'SkuNotAvailable', message: 'x' },
      });
    const a = handle(s, AllocRequest, req(1));
    const f1 = failSpot(a.state, 's1', of(a, AzureCreateVm)[0]!.vmName);
    const od1 = of(f1, AzureCreateVm)[0]!.vmName;
    s = handle(f1.state, AllocCreateResult, { sessionId: 's1', vmName: od1, ok: true }).state;
    const b = handle(s, AllocRequest, req(2));
    const f2 = failSpot(b.state, 's2', of(b, AzureCreateVm)[0]!.vmName);
    s = f2.state;
    expect(s.queue.map((q) => q.sessionId)).toEqual(['s2']);
    // s1 stops; once its VM is gone, the On-Demand capacity it held is free: s2 gets it now,
    // not when the cold time runs out.
    s = handle(s, AllocRelease, { sessionId: 's1', playerId: 'p1', reason: 'player' }).state;
    const gone = handle(s, AllocDeleteResult, { sessionId: 's1', vmName: od1, ok: true });
    expect(of(gone, AllocDecided).map((d) => [d.decision, d.candidate])).toContainEqual([
      'warm',
      'odnc4',
    ]);
    expect(of(gone, SessionAllocated)).toEqual([
      expect.objectContaining({ sessionId: 's2', tier: 'on_demand' }),
    ]);
  });

  it('keeps a Spot-only player to Spot: waits for it, while others behind may go On-Demand', () => {
    // Room for one Spot VM and two On-Demand.
    let s = withQuota(4, 8);
    const a = handle(s, AllocRequest, req(1));
    const spot1 = of(a, AzureCreateVm)[0]!;
    expect(spot1.priority).toBe('spot');
    s = handle(a.state, AllocCreateResult, {
      sessionId: 's1',
      vmName: spot1.vmName,
      ok: true,
    }).state;
    // s2 takes Spot only: On-Demand is free, but it waits in line instead.
    const b = handle(s, AllocRequest, { ...req(2), spotOnly: true });
    expect(of(b, AzureCreateVm)).toEqual([]);
    expect(of(b, SessionQueued)).toEqual([
      expect.objectContaining({ sessionId: 's2', position: 1 }),
    ]);
    // s3 takes any tier: it need not wait behind a player who refuses On-Demand.
    const c = handle(b.state, AllocRequest, req(3));
    expect(of(c, SessionAllocated)).toEqual([
      expect.objectContaining({ sessionId: 's3', tier: 'on_demand' }),
    ]);
    // s4 takes Spot only too: behind s2.
    const d = handle(c.state, AllocRequest, { ...req(4), spotOnly: true });
    expect(d.state.queue.map((q) => q.sessionId)).toEqual(['s2', 's4']);
    // s1 stops: its Spot VM, once gone, goes to s2, first in line; s4 moves up.
    s = handle(d.state, AllocRelease, { sessionId: 's1', playerId: 'p1', reason: 'player' }).state;
    const gone = handle(s, AllocDeleteResult, { sessionId: 's1', vmName: spot1.vmName, ok: true });
    expect(of(gone, SessionAllocated)).toEqual([
      expect.objectContaining({ sessionId: 's2', tier: 'spot' }),
    ]);
    expect(of(gone, SessionQueued)).toEqual([
      expect.objectContaining({ sessionId: 's4', position: 1 }),
    ]);
    // A failed Spot create puts a Spot-only player back in line, never on On-Demand.
    const vm2 = of(gone, AzureCreateVm)[0]!.vmName;
    const failed = handle(gone.state, AllocCreateResult, {
      sessionId: 's2',
      vmName: vm2,
      ok: false,
      error: { kind: 'capacity', code: 'SkuNotAvailable', message: 'x' },
    });
    expect(of(failed, AzureCreateVm).filter((x) => x.vmName !== vm2)).toEqual([]);
    expect(failed.state.queue.map((q) => [q.sessionId, q.spotOnly])).toEqual([
      ['s2', true],
      ['s4', true],
    ]);
  });

  it('serves those taking any tier past Spot-only players waiting, in order otherwise', () => {
    // Spot full (someone else), On-Demand full: s1 (Spot only) and s2 (any) wait, in order.
    let s = handle(initialAllocState(), AllocUsage, usage(4, 4, 4, 4)).state;
    s = handle(s, AllocRequest, { ...req(1), spotOnly: true }).state;
    s = handle(s, AllocRequest, req(2)).state;
    s = handle(s, AllocRequest, req(3)).state;
    expect(s.queue.map((q) => q.sessionId)).toEqual(['s1', 's2', 's3']);
    // On-Demand frees up (a usage report): s2 gets it; s1 keeps waiting for Spot, s3 behind s2.
    const r = handle(s, AllocUsage, usage(4, 4, 4, 0));
    expect(of(r, SessionAllocated).map((x) => [x.sessionId, x.tier])).toEqual([
      ['s2', 'on_demand'],
    ]);
    expect(r.state.queue.map((q) => q.sessionId)).toEqual(['s1', 's3']);
    // s3 moved up; s1's place did not change, so it is not told again.
    expect(of(r, SessionQueued).map((x) => [x.sessionId, x.position])).toEqual([['s3', 2]]);
  });

  it('honours Retry-After on 429 and retries the same VM name', () => {
    const a = handle(withQuota(8, 8), AllocRequest, req(1));
    const vm = of(a, AzureCreateVm)[0]!.vmName;
    const r = handle(a.state, AllocCreateResult, {
      sessionId: 's1',
      vmName: vm,
      ok: false,
      error: {
        kind: 'throttled',
        code: 'TooManyRequests',
        message: 'slow down',
        retryAfterMs: 17_000,
      },
    });
    expect(r.timers).toEqual([{ name: `retry:${vm}`, at: later(17_000) }]);
    const again = handle(
      r.state,
      TimerFired,
      {
        timerId: '2',
        name: `retry:${vm}`,
        dueAt: later(17_000).toISOString(),
        firedAt: later(17_000).toISOString(),
      },
      later(17_000),
    );
    expect(of(again, AzureCreateVm).map((c) => c.vmName)).toEqual([vm]);
  });

  /** Session s1's create, failed with `error` as many times as the allocator tries. */
  function failEveryAttempt(error: {
    kind: 'transient' | 'other';
    code: string;
    message: string;
  }): HandlerResult<AllocState> {
    let s = handle(withQuota(8, 8), AllocRequest, req(1)).state;
    const vm = Object.keys(s.reservations)[0]!;
    let r: HandlerResult<AllocState> | undefined;
    for (let i = 0; i < cfg.maxAttempts; i++) {
      r = handle(s, AllocCreateResult, { sessionId: 's1', vmName: vm, ok: false, error });
      s = r.state;
    }
    return r!;
  }

  it('gives up after repeated transient failures and tells the session', () => {
    const r = failEveryAttempt({ kind: 'transient', code: 'InternalError', message: '500' });
    expect(of(r, SessionAllocFailed)).toEqual([
      {
        type: 'session.alloc_failed.v1',
        sessionId: 's1',
        reason:
          'Azure kept failing on its side while creating the machine (try again in a few minutes)',
      },
    ]);
    expect(r.state.reservations).toEqual({});
  });

  it('tells the session the cloud refused a create that kept failing for another reason than a fault', () => {
    const r = failEveryAttempt({ kind: 'other', code: 'InvalidParameter', message: 'bad image' });
    expect(of(r, SessionAllocFailed).map((f) => f.reason)).toEqual([
      'the cloud refused to create the machine',
    ]);
  });

  it('releases: a queued session leaves the line at once; a running VM is deleted, then the line moves', () => {
    let s = withQuota(4, 0);
    s = handle(s, AllocRequest, req(1)).state;
    const vm = Object.keys(s.reservations)[0]!;
    s = handle(s, AllocCreateResult, { sessionId: 's1', vmName: vm, ok: true }).state;
    s = handle(s, AllocRequest, req(2)).state;
    s = handle(s, AllocRequest, req(3)).state;
    const leave = handle(s, AllocRelease, { sessionId: 's3', playerId: 'p3', reason: 'player' });
    expect(of(leave, SessionVmReleased)).toEqual([
      { type: 'session.vm_released.v1', sessionId: 's3', stillHeld: 0 },
    ]);
    const stop = handle(leave.state, AllocRelease, {
      sessionId: 's1',
      playerId: 'p1',
      reason: 'player',
    });
    expect(of(stop, AzureDeleteVm).map((d) => d.vmName)).toEqual([vm]);
    expect(of(stop, SessionVmReleased)).toEqual([]);
    const gone = handle(stop.state, AllocDeleteResult, { sessionId: 's1', vmName: vm, ok: true });
    expect(of(gone, SessionVmReleased)).toEqual([
      expect.objectContaining({ sessionId: 's1', vmName: vm }),
    ]);
    expect(of(gone, SessionAllocated)).toEqual([expect.objectContaining({ sessionId: 's2' })]);
  });

  it('tells queued players an estimate learnt from how fast the line has moved', () => {
    let s = withQuota(4, 0);
    s = handle(s, AllocRequest, req(1)).state;
    let running = 's1';
    // Nothing learnt yet: the configured guess, 300 s a place.
    const first = handle(s, AllocRequest, req(2));
    expect(of(first, SessionQueued)).toEqual([expect.objectContaining({ estimateSeconds: 300 })]);
    s = first.state;
    for (let n = 3; n <= 8; n++) s = handle(s, AllocRequest, req(n)).state;
    // Each of three players plays two minutes, then the next in line is served.
    let told: number[] = [];
    for (let k = 1; k <= 3; k++) {
      const at = later(k * 120_000);
      const vm = Object.keys(s.reservations)[0]!;
      s = handle(s, AllocCreateResult, { sessionId: running, vmName: vm, ok: true }, at).state;
      s = handle(
        s,
        AllocRelease,
        { sessionId: running, playerId: `p${running.slice(1)}`, reason: 'player' },
        at,
      ).state;
      const gone = handle(s, AllocDeleteResult, { sessionId: running, vmName: vm, ok: true }, at);
      running = of(gone, SessionAllocated)[0]!.sessionId;
      told = of(gone, SessionQueued).map((q) => q.estimateSeconds);
      s = gone.state;
    }
    // Three served, two minutes apart: 120 s a place.
    expect(running).toBe('s4');
    expect(told).toEqual([120, 240, 360, 480]);
  });

  it('refuses a request whose release arrived first, and forgets such releases after an hour', () => {
    let s = withQuota(8, 8);
    // A worker died between Play and Stop: the stop's release reached the allocator first.
    const r = handle(s, AllocRelease, { ...req(1), reason: 'player', allocation: 1 });
    expect(of(r, SessionVmReleased).map((v) => v.sessionId)).toEqual(['s1']);
    const late = handle(r.state, AllocRequest, req(1));
    expect(of(late, AzureCreateVm)).toEqual([]);
    expect(late.ignored).toMatch(/released round 1 before its request arrived/);
    expect(late.state.reservations).toEqual({});
    // Another player is served as ever.
    s = handle(late.state, AllocRequest, req(2)).state;
    expect(Object.values(s.reservations).map((v) => v.sessionId)).toEqual(['s2']);
    // A release without the round (an older session worker) is remembered by nobody.
    const old = handle(s, AllocRelease, { sessionId: 's3', playerId: 'p3', reason: 'player' });
    expect(of(handle(old.state, AllocRequest, req(3)), AzureCreateVm)).toHaveLength(1);
    // The next usage report an hour on forgets the release.
    const hour = later(61 * 60_000);
    expect(s.released).toEqual({ s1: { allocation: 1, at: T0.toISOString() } });
    s = handle(s, AllocUsage, { ...usage(8, 8), at: hour.toISOString() }, hour).state;
    expect(s.released).toBeUndefined();
  });

  it('lets a VM being created finish before deleting it when its session lets go', () => {
    const release = { sessionId: 's1', playerId: 'p1', reason: 'player' };
    const created = { sessionId: 's1', ok: true };
    // The create in flight: no delete yet (it could race the create); after its result, one.
    let a = handle(withQuota(8, 8), AllocRequest, req(1));
    let vm = of(a, AzureCreateVm)[0]!.vmName;
    const waiting = handle(a.state, AllocRelease, release);
    expect(of(waiting, AzureDeleteVm)).toEqual([]);
    expect(of(waiting, SessionVmReleased)).toEqual([]);
    expect(of(handle(waiting.state, AllocRelease, release), AzureDeleteVm)).toEqual([]);
    const made = handle(waiting.state, AllocCreateResult, { ...created, vmName: vm });
    expect(of(made, AzureDeleteVm).map((d) => d.vmName)).toEqual([vm]);
    expect(made.state.reservations[vm]).toMatchObject({ status: 'deleting', attempts: 0 });
    expect(made.state.reservations[vm]!.release).toBeUndefined();
    const gone = handle(made.state, AllocDeleteResult, { sessionId: 's1', vmName: vm, ok: true });
    expect(of(gone, SessionVmReleased).map((r) => r.sessionId)).toEqual(['s1']);
    expect(gone.state.reservations).toEqual({});

    // A create that failed for capacity is not tried on the next candidate: deleted instead.
    a = handle(withQuota(8, 8), AllocRequest, req(1));
    vm = of(a, AzureCreateVm)[0]!.vmName;
    const full = handle(handle(a.state, AllocRelease, release).state, AllocCreateResult, {
      ...created,
      vmName: vm,
      ok: false,
      error: { kind: 'capacity', code: 'AllocationFailed', message: 'no room' },
    });
    expect(of(full, AzureCreateVm)).toEqual([]);
    expect(of(full, AzureDeleteVm).map((d) => d.vmName)).toEqual([vm]);

    // One waiting for a retry is deleted when the retry comes due, not created again.
    a = handle(withQuota(8, 8), AllocRequest, req(1));
    vm = of(a, AzureCreateVm)[0]!.vmName;
    const throttled = handle(a.state, AllocCreateResult, {
      ...created,
      vmName: vm,
      ok: false,
      error: { kind: 'throttled', code: 'TooManyRequests', message: 'slow', retryAfterMs: 5_000 },
    });
    const due = handle(
      handle(throttled.state, AllocRelease, release).state,
      TimerFired,
      {
        timerId: '3',
        name: `retry:${vm}`,
        dueAt: later(5_000).toISOString(),
        firedAt: later(5_000).toISOString(),
      },
      later(5_000),
    );
    expect(of(due, AzureCreateVm)).toEqual([]);
    expect(of(due, AzureDeleteVm).map((d) => d.vmName)).toEqual([vm]);
  });

  it('deletes VMs no reservation explains (orphans) once seen so for the grace period', () => {
    const s = handle(withQuota(8, 8), AllocRequest, req(1)).state;
    const mine = Object.keys(s.reservations)[0]!;
    const inventory = (at: Date, ghosts: string[]) => ({
      at: at.toISOString(),
      vms: [
        { name: mine, sessionId: 's1', purpose: 'respawn-session' },
        ...ghosts.map((g) => ({ name: g, sessionId: 'old', purpose: 'respawn-session' })),
        { name: 'jumpbox', purpose: 'ops' },
      ],
    });
    const ghost = 'vm-ghost-a1-spotnc4';
    const passer = 'vm-passer-a1-spotnc4';
    // First seen: noted, not deleted (a create in flight elsewhere may explain it soon).
    const first = handle(s, AllocInventory, inventory(T0, [ghost, passer]));
    expect(of(first, AzureDeleteVm)).toEqual([]);
    // Before the grace period has passed: still nothing.
    const early = handle(
      first.state,
      AllocInventory,
      inventory(later(60_000), [ghost, passer]),
      later(60_000),
    );
    expect(of(early, AzureDeleteVm)).toEqual([]);
    // After it: the one still there is deleted; one that went away meanwhile is forgotten.
    const graceMs = cfg.reconcileGraceMs;
    const due = handle(
      early.state,
      AllocInventory,
      inventory(later(graceMs), [ghost]),
      later(graceMs),
    );
    expect(of(due, AzureDeleteVm).map((d) => d.vmName)).toEqual([ghost]);
    expect(of(due, AllocDecided).map((d) => [d.decision, d.vmName])).toEqual([['orphan', ghost]]);
    const back = handle(
      due.state,
      AllocInventory,
      inventory(later(graceMs + 1), [passer]),
      later(graceMs + 1),
    );
    expect(of(back, AzureDeleteVm)).toEqual([]);
    // The live session's VM is never touched.
    expect(of(due, AzureDeleteVm).some((d) => d.vmName === mine)).toBe(false);
  });

  it('drops a running reservation whose VM Azure no longer lists, tells the session, serves the line', () => {
    // Room for one VM: s1 runs, s2 waits.
    let s = withQuota(4, 0);
    const a = handle(s, AllocRequest, req(1));
    const vm = of(a, AzureCreateVm)[0]!.vmName;
    s = handle(a.state, AllocCreateResult, { sessionId: 's1', vmName: vm, ok: true }).state;
    s = handle(s, AllocRequest, req(2)).state;
    expect(s.queue.map((q) => q.sessionId)).toEqual(['s2']);
    const empty = (at: Date) => ({ at: at.toISOString(), vms: [] });
    const first = handle(s, AllocInventory, empty(T0));
    expect(of(first, SessionVmReleased)).toEqual([]);
    expect(first.state.reservations[vm]).toBeDefined();
    const due = handle(
      first.state,
      AllocInventory,
      empty(later(cfg.reconcileGraceMs)),
      later(cfg.reconcileGraceMs),
    );
    expect(of(due, SessionVmReleased)).toEqual([
      { type: SessionVmReleased.type, sessionId: 's1', vmName: vm, allocation: 1, stillHeld: 0 },
    ]);
    expect(due.state.reservations[vm]).toBeUndefined();
    // Its quota went to the next in line.
    expect(of(due, SessionAllocated).map((x) => x.sessionId)).toEqual(['s2']);
  });

  it('asks the session of each running VM past the grace period whether it still owns it', () => {
    let s = withQuota(8, 0);
    const a = handle(s, AllocRequest, req(1));
    const vm = of(a, AzureCreateVm)[0]!.vmName;
    s = handle(a.state, AllocCreateResult, { sessionId: 's1', vmName: vm, ok: true }).state;
    const b = handle(s, AllocRequest, req(2), later(cfg.reconcileGraceMs - 1));
    const young = of(b, AzureCreateVm)[0]!.vmName;
    s = handle(b.state, AllocCreateResult, { sessionId: 's2', vmName: young, ok: true }).state;
    const listed = (at: Date) => ({
      at: at.toISOString(),
      vms: [vm, young].map((name) => ({ name, purpose: 'respawn-session' })),
    });
    // Before its grace period: not asked.
    expect(of(handle(s, AllocInventory, listed(T0)), SessionVmCheck)).toEqual([]);
    // After: the older VM's session is asked, on its own subject; the younger one is not yet.
    const due = handle(
      s,
      AllocInventory,
      listed(later(cfg.reconcileGraceMs)),
      later(cfg.reconcileGraceMs),
    );
    expect(of(due, SessionVmCheck)).toEqual([
      { type: SessionVmCheck.type, sessionId: 's1', vmName: vm, region: 'centralindia' },
    ]);
    expect(
      (due.emit ?? []).filter((e) => e.type === SessionVmCheck.type).map((e) => e.subject),
    ).toEqual(['respawn.session.p1.cmd.vm_check']);
    // A VM being deleted is not asked about.
    const releasing = handle(s, AllocRelease, { sessionId: 's1', playerId: 'p1', reason: 'x' });
    const deleting = handle(
      releasing.state,
      AllocInventory,
      listed(later(cfg.reconcileGraceMs)),
      later(cfg.reconcileGraceMs),
    );
    expect(of(deleting, SessionVmCheck)).toEqual([]);
  });

  it('leaves a VM that comes back before the grace period alone', () => {
    let s = withQuota(4, 0);
    const a = handle(s, AllocRequest, req(1));
    const vm = of(a, AzureCreateVm)[0]!.vmName;
    s = handle(a.state, AllocCreateResult, { sessionId: 's1', vmName: vm, ok: true }).state;
    s = handle(s, AllocInventory, { at: T0.toISOString(), vms: [] }).state;
    s = handle(
      s,
      AllocInventory,
      {
        at: later(1_000).toISOString(),
        vms: [{ name: vm, sessionId: 's1', purpose: 'respawn-session' }],
      },
      later(1_000),
    ).state;
    const after = handle(
      s,
      AllocInventory,
      { at: later(cfg.reconcileGraceMs).toISOString(), vms: [] },
      later(cfg.reconcileGraceMs),
    );
    expect(of(after, SessionVmReleased)).toEqual([]);
    expect(after.state.reservations[vm]).toBeDefined();
  });

  it('names VMs from the session, allocation and candidate, within Azure’s length limit', () => {
    expect(vmNameFor('p1-3', 2, 'spotnc4')).toBe('vm-p1-3-a2-spotnc4');
    expect(vmNameFor('p1-3', 2, 'spotnc4')).toBe(vmNameFor('p1-3', 2, 'spotnc4'));
    expect(vmNameFor('x'.repeat(64), 1, 'odnc4').length).toBeLessThanOrEqual(60);
  });

  it('gives names that tie a VM to its session, as the agent route checks them', () => {
    // Plain, too long for the plain form, and not plain (upper case, `_`): hashed names.
    for (const session of ['7100001775-3', `${'x'.repeat(50)}-1`, 'Ab_c-2']) {
      for (const [round, cand] of [
        [1, 'spotnc4'],
        [12, 'odnc4'],
      ] as const) {
        const vm = vmNameFor(session, round, cand);
        expect(vmOfSession(vm, session)).toBe(true);
        expect(vmOfSession(vm, `${session}1`)).toBe(false);
        expect(vmOfSession(vm, 'other-1')).toBe(false);
      }
    }
    expect(vmOfSession('vm-p1-11-a1-spotnc4', 'p1-1')).toBe(false);
    expect(sessionOfPlayer('7100001775-3', '7100001775')).toBe(true);
    expect(sessionOfPlayer('7100001775-3', '710000177')).toBe(false);
    expect(sessionOfPlayer('71-3', '7')).toBe(false);
    expect(sessionOfPlayer('p1-x', 'p1')).toBe(false);
  });

  it('never gives two players one disk or two sessions one VM, though Azure ignores case', () => {
    // Ids other services may use: the same letters in another case, `_` for `-`, long ones.
    const players = ['ab', 'Ab', 'AB', 'a_b', 'a-b', 'A_b', 'x'.repeat(64), `${'x'.repeat(63)}y`];
    const disks = players.map((p) => playerDiskName(p).toLowerCase());
    expect(new Set(disks).size).toBe(players.length);
    expect(playerDiskName('7100001775')).toBe('disk-7100001775'); // Telegram ids: unchanged
    for (const d of disks) expect(d).toMatch(/^[a-z0-9][a-z0-9_.-]{0,78}[a-z0-9_]$/);
    const vms = players.flatMap((p) => [1, 2].map((n) => vmNameFor(`${p}-${n}`, 1, 'spotnc4')));
    expect(new Set(vms.map((v) => v.toLowerCase())).size).toBe(vms.length);
    // Windows VM names: letters, digits and hyphens only, at most 64.
    for (const v of vms) expect(v).toMatch(/^[a-z0-9-]{1,60}$/);
  });

  it('tells a moving line its new places without messaging every queued player on each release', () => {
    let s = withQuota(4, 0);
    s = handle(s, AllocRequest, req(0)).state;
    for (let n = 1; n <= 30; n++) s = handle(s, AllocRequest, req(n)).state;
    const vm = Object.keys(s.reservations)[0]!;
    s = handle(s, AllocRelease, { sessionId: 's0', playerId: 'p0', reason: 'player' }).state;
    const r = handle(s, AllocDeleteResult, { sessionId: 's0', vmName: vm, ok: true });
    expect(of(r, SessionAllocated).map((a) => a.sessionId)).toEqual(['s1']);
    // 29 still waiting: the first ten are told, and the one who reached place 20.
    expect(of(r, SessionQueued).map((q) => q.position)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20,
    ]);
  });
});
