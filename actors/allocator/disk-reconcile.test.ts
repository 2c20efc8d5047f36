import { describe, expect, it } from 'vitest';
import {
  AllocDiskRound,
  playerDiskName,
  AllocUsage,
  AzureReconcileDisks,
  MAX_DISK_SUSPECTS,
  TimerFired,
  type DiskSuspect,
  type MessageDef,
} from '../../contracts/index.ts';
import type { HandlerResult } from '../runtime/index.ts';
import type { DiskInfo } from './azure/index.ts';
import { createAllocatorActor } from './actor.ts';
import { judge, observeDisks, type DiskRecord, type Observation } from './disk-reconcile.ts';
import { defaultAllocatorConfig, initialAllocState, type AllocState } from './state.ts';

const REGION = 'centralindia';
const T0 = new Date('2026-03-01T18:00:00Z');
const later = (ms: number): Date => new Date(T0.getTime() + ms);
const HOUR = 3_600_000;

function disk(name: string, tags: Record<string, string>, over: Partial<DiskInfo> = {}): DiskInfo {
  return {
    name,
    id: `/disks/${name}`,
    sizeGb: 256,
    sku: 'Premium_LRS',
    zone: null,
    diskState: 'Unattached',
    attachedToVm: null,
    provisioningState: 'Succeeded',
    tags: { purpose: 'respawn-disk', ...tags },
    createdAt: null,
    ...over,
  };
}

function rec(playerId: string, over: Partial<DiskRecord> = {}): DiskRecord {
  return { playerId, phase: 'idle', diskState: 'live', region: REGION, seq: 1, ...over };
}

const records = (...rs: DiskRecord[]) => new Map(rs.map((r) => [r.playerId, r]));
const brief = (os: Observation[]) => os.map((o) => `${o.finding} ${o.diskName}`).sort();

describe('observeDisks', () => {
  it('finds nothing when Azure and the records agree', () => {
    const found = observeDisks({
      region: REGION,
      disks: [disk('disk-a', { player: 'a' }), disk(playerDiskName('B_x'), { player: 'B_x' })],
      snapshots: ['snap-disk-c'],
      records: records(
        rec('a'),
        rec('B_x'),
        rec('c', { diskState: 'archived' }),
        rec('d', { diskState: 'none' }),
      ),
    });
    expect(found).toEqual([]);
  });

  it('a recorded disk Azure lacks is missing, saying whether its archive remains', () => {
    const found = observeDisks({
      region: REGION,
      disks: [disk('disk-gone', { player: 'gone' }, { provisioningState: 'Deleting' })],
      snapshots: ['SNAP-DISK-ARCH'],
      records: records(
        rec('lost', { seq: 4 }),
        rec('arch'),
        rec('gone'),
        rec('noarch', { diskState: 'archived' }),
      ),
    });
    expect(found.find((o) => o.playerId === 'lost')).toEqual({
      finding: 'missing',
      diskName: 'disk-lost',
      playerId: 'lost',
      seq: 4,
      detail: 'recorded live; no disk and no archive',
    });
    expect(found.find((o) => o.playerId === 'arch')?.snapshotName).toBe('snap-disk-arch');
    expect(brief(found)).toEqual([
      'missing disk-arch',
      'missing disk-gone',
      'missing disk-lost',
      'missing disk-noarch',
    ]);
  });

  it('a player’s disk the record does not know is unrecorded, with its zone', () => {
    const found = observeDisks({
      region: REGION,
      disks: [
        disk('disk-new', { player: 'new' }, { zone: '2' }),
        disk('disk-arch', { player: 'arch' }),
      ],
      snapshots: ['snap-disk-arch'],
      records: records(
        rec('new', { diskState: 'none', region: undefined, seq: 0 }),
        rec('arch', { diskState: 'archived' }),
      ),
    });
    expect(found).toEqual([
      {
        finding: 'unrecorded',
        diskName: 'disk-new',
        playerId: 'new',
        seq: 0,
        zone: '2',
        detail: 'recorded as none',
      },
      {
        finding: 'unrecorded',
        diskName: 'disk-arch',
        playerId: 'arch',
        seq: 1,
        detail: 'recorded as archived',
      },
    ]);
  });

  it('a disk no record accounts for is unowned (no player, no state, another name or region)', () => {
    const found = observeDisks({
      region: REGION,
      disks: [
        disk('disk-ghost', { player: 'ghost' }),
        disk('data-1', {}),
        disk('disk-odd', { player: 'a.b' }),
        disk('spare-a', { player: 'a' }),
        disk('disk-moved', { player: 'moved' }),
        disk('disk-a', { player: 'a' }),
      ],
      snapshots: [],
      records: records(rec('a'), rec('moved', { region: 'westindia' })),
    });
    expect(found.map((o) => [o.diskName, o.playerId, o.detail])).toEqual([
      ['disk-ghost', 'ghost', 'player ghost has no session state'],
      ['data-1', undefined, 'no player tag'],
      ['disk-odd', undefined, 'player tag "a.b"'],
      ['spare-a', 'a', "not the player's disk (disk-a)"],
      ['disk-moved', 'moved', "the player's sessions are recorded in westindia"],
    ]);
    expect(new Set(found.map((o) => o.finding))).toEqual(new Set(['unowned']));
  });

  it('leaves a session that is not idle alone: its disk is being made, used or restored', () => {
    for (const phase of ['starting', 'provisioning', 'ready', 'playing', 'stopping', 'evicted']) {
      const found = observeDisks({
        region: REGION,
        disks: [disk('disk-new', { player: 'new' })],
        snapshots: [],
        records: records(rec('new', { phase, diskState: 'none' }), rec('old', { phase })),
      });
      expect(found, phase).toEqual([]);
    }
  });
});

describe('judge (the grace period)', () => {
  const seen: Observation = {
    finding: 'missing',
    diskName: 'disk-a',
    playerId: 'a',
    seq: 1,
    detail: '',
  };
  const suspect = (since: Date, over: Partial<DiskSuspect> = {}): DiskSuspect => ({
    finding: 'missing',
    diskName: 'disk-a',
    playerId: 'a',
    seq: 1,
    since: since.toISOString(),
    ...over,
  });

  it('waits on a first sighting and remembers it', () => {
    const v = judge([seen], [], T0, HOUR);
    expect(v.act).toEqual([]);
    expect(v.waiting).toEqual([seen]);
    expect(v.suspects).toEqual([suspect(T0)]);
  });

  it('acts when two rounds at least the grace apart agree, and keeps the first sighting', () => {
    expect(judge([seen], [suspect(T0)], later(HOUR - 1), HOUR).act).toEqual([]);
    const v = judge([seen], [suspect(T0)], later(HOUR), HOUR);
    expect(v.act).toEqual([seen]);
    expect(v.suspects).toEqual([suspect(T0)]);
  });

  it('even with no grace, needs two rounds', () => {
    expect(judge([seen], [], T0, 0).act).toEqual([]);
    expect(judge([seen], [suspect(T0)], T0, 0).act).toEqual([seen]);
  });

  it('forgets what a round no longer sees, and starts over after a new session', () => {
    expect(judge([], [suspect(T0)], later(HOUR), HOUR).suspects).toEqual([]);
    const v = judge([{ ...seen, seq: 2 }], [suspect(T0)], later(HOUR), HOUR);
    expect(v.act).toEqual([]);
    expect(v.suspects).toEqual([suspect(later(HOUR), { seq: 2 })]);
  });

  it('remembers at most MAX_DISK_SUSPECTS, the oldest first', () => {
    const many: Observation[] = Array.from({ length: MAX_DISK_SUSPECTS + 5 }, (_, i) => ({
      finding: 'unowned',
      diskName: `d-${String(i).padStart(4, '0')}`,
      detail: '',
    }));
    const old = suspect(T0, { finding: 'unowned', diskName: 'd-0204' });
    delete old.playerId;
    delete old.seq;
    const v = judge([...many].reverse(), [old], later(1), HOUR);
    expect(v.suspects).toHaveLength(MAX_DISK_SUSPECTS);
    expect(v.dropped).toBe(5);
    expect(v.suspects[0]).toEqual(old);
  });
});

describe('the allocator schedules disk rounds', () => {
  const cfg = { ...defaultAllocatorConfig, diskReconcileMs: HOUR, diskGraceMs: HOUR / 2 };
  const actor = createAllocatorActor(cfg);
  function handle(s: AllocState, def: MessageDef, value: unknown, now = T0) {
    return actor.handle(s, def.decode(def.encode(value)) as never, {
      kind: 'alloc',
      key: REGION,
      now,
      msgId: 'm',
      subject: 's',
      redeliveries: 0,
    });
  }
  const effects = (r: HandlerResult<AllocState>) =>
    (r.emit ?? [])
      .filter((e) => e.type === AzureReconcileDisks.type)
      .map((e) => ({ subject: e.subject, ...AzureReconcileDisks.decode(e.data) }));
  const usage = {
    at: T0.toISOString(),
    usages: [{ name: 'lowPriorityCores', current: 0, limit: 8 }],
  };
  const fire = (s: AllocState, at: Date) =>
    handle(
      s,
      TimerFired,
      { timerId: '1', name: 'disks', dueAt: at.toISOString(), firedAt: at.toISOString() },
      at,
    );

  it('sets the first round with the first usage report, once', () => {
    const first = handle(initialAllocState(), AllocUsage, usage);
    expect(first.timers).toContainEqual({ name: 'disks', at: later(HOUR) });
    expect(first.state.disks).toEqual({ suspects: [] });
    const second = handle(first.state, AllocUsage, usage, later(60_000));
    expect(second.timers?.map((t) => t.name)).not.toContain('disks');
  });

  it('starts each round with what the last one suspected, and sets the next', () => {
    let s = handle(initialAllocState(), AllocUsage, usage).state;
    const round = fire(s, later(HOUR));
    expect(effects(round)).toEqual([
      {
        subject: `respawn.out.azure.${REGION}`,
        type: AzureReconcileDisks.type,
        at: later(HOUR).toISOString(),
        graceMs: HOUR / 2,
        suspects: [],
      },
    ]);
    expect(round.timers).toEqual([{ name: 'disks', at: later(2 * HOUR) }]);
    const suspects: DiskSuspect[] = [
      { finding: 'unowned', diskName: 'disk-x', since: later(HOUR).toISOString() },
    ];
    s = handle(round.state, AllocDiskRound, {
      at: later(HOUR).toISOString(),
      suspects,
      counts: {
        disks: 1,
        snapshots: 0,
        records: 0,
        missing: 0,
        unrecorded: 0,
        unowned: 1,
        acted: 0,
        waiting: 1,
      },
    }).state;
    expect(s.disks).toEqual({ suspects });
    expect(effects(fire(s, later(2 * HOUR)))[0]?.suspects).toEqual(suspects);
  });

  it('schedules nothing when turned off', () => {
    const off = createAllocatorActor({ ...cfg, diskReconcileMs: 0 });
    const r = off.handle(initialAllocState(), AllocUsage.decode(AllocUsage.encode(usage)), {
      kind: 'alloc',
      key: REGION,
      now: T0,
      msgId: 'm',
      subject: 's',
      redeliveries: 0,
    });
    expect(r.timers?.map((t) => t.name)).toEqual(['refresh']);
    expect(r.state.disks).toBeUndefined();
  });
});
