/**
 * Disk reconciliation, the pure part: players' disks in Azure against their recorded disk state
 * (the session actor's `diskState`). The allocator's durable `disks` timer starts each round as
 * an effect carrying what earlier rounds suspected; the effects runner (disk-round.ts) lists
 * Azure and the records, and decides here what to do. Nothing is done about a finding until two
 * rounds at least the grace period apart agree on it, so a disk being created or archived right
 * now is not misjudged.
 */
import {
  AzureReconcileDisks,
  DiskFindings,
  MAX_DISK_SUSPECTS,
  outAzureSubject,
  playerDiskName,
  playerSnapshotName,
  type DiskFinding,
  type DiskSuspect,
} from '../../contracts/index.ts';
import { emit, type Emission, type HandlerContext, type TimerOp } from '../runtime/index.ts';
import type { DiskInfo } from './azure/index.ts';
import type { AllocState, AllocatorConfig } from './state.ts';

export const DISK_TIMER = 'disks';

/** The allocator's step in progress (actor.ts passes its own). */
interface Step {
  s: AllocState;
  emit: Emission[];
  timers: TimerOp[];
}

const nextRound = (cfg: AllocatorConfig, ctx: HandlerContext): TimerOp => ({
  name: DISK_TIMER,
  at: new Date(ctx.now.getTime() + cfg.diskReconcileMs),
});

/** Schedules the first round, once: later rounds schedule their successor. */
export function ensureDiskRounds(cfg: AllocatorConfig, st: Step, ctx: HandlerContext): void {
  if (cfg.diskReconcileMs <= 0 || st.s.disks !== undefined) return;
  st.s = { ...st.s, disks: { suspects: [] } };
  st.timers.push(nextRound(cfg, ctx));
}

/** The `disks` timer fired: ask the effects runner for a round, and set the next. */
export function startDiskRound(cfg: AllocatorConfig, st: Step, ctx: HandlerContext): void {
  if (cfg.diskReconcileMs <= 0) return;
  st.emit.push(
    emit(AzureReconcileDisks, outAzureSubject(ctx.key), {
      at: ctx.now.toISOString(),
      graceMs: cfg.diskGraceMs,
      suspects: st.s.disks?.suspects ?? [],
    }),
  );
  st.timers.push(nextRound(cfg, ctx));
}

/** What the session actor has recorded about a player's disk (rt_state, read only). */
export interface DiskRecord {
  playerId: string;
  phase: string;
  diskState: 'none' | 'live' | 'archived';
  region: string | undefined;
  /** Sessions started so far: a session started since a finding makes it stale. */
  seq: number;
}

/** One discrepancy seen in one round. */
export interface Observation {
  finding: DiskFinding;
  diskName: string;
  playerId?: string;
  seq?: number;
  /** missing: the archive that is still there (the state becomes archived, not none). */
  snapshotName?: string;
  /** unrecorded: where the disk lives. */
  zone?: string;
  /** Why, for the operator. */
  detail: string;
}

const gone = (provisioningState: string): boolean => provisioningState.toLowerCase() === 'deleting';
/** A player id as subjects and messages take it (a tag may hold anything). */
const PLAYER = /^[A-Za-z0-9_-]{1,64}$/;
/** Azure's rule for managed disk names; a listing holds no other. */
const DISK = /^[A-Za-z0-9._-]{1,80}$/;

/**
 * Compares one region's Respawn-tagged player disks (and archives) with the records. Sessions
 * that are not idle are left alone (their disk is being created, attached or restored); a
 * tagged disk no record accounts for is only ever reported.
 */
export function observeDisks(input: {
  region: string;
  disks: readonly DiskInfo[];
  /** Names of the region's Respawn snapshots. */
  snapshots: readonly string[];
  records: ReadonlyMap<string, DiskRecord>;
}): Observation[] {
  const { region, records } = input;
  const disks = input.disks.filter((d) => !gone(d.provisioningState) && DISK.test(d.name));
  const diskNames = new Set(disks.map((d) => d.name.toLowerCase()));
  const snapshots = new Set(input.snapshots.map((n) => n.toLowerCase()));
  const out: Observation[] = [];
  const unowned = (d: DiskInfo, detail: string, playerId?: string): void => {
    out.push({
      finding: DiskFindings.unowned,
      diskName: d.name,
      ...(playerId === undefined ? {} : { playerId }),
      detail,
    });
  };
  for (const d of disks) {
    const player = d.tags.player;
    const rec = player === undefined ? undefined : records.get(player);
    if (player === undefined || player === '') unowned(d, 'no player tag');
    else if (!PLAYER.test(player)) unowned(d, `player tag ${JSON.stringify(player.slice(0, 64))}`);
    else if (rec === undefined) unowned(d, `player ${player} has no session state`, player);
    else if (d.name.toLowerCase() !== playerDiskName(player)) {
      unowned(d, `not the player's disk (${playerDiskName(player)})`, player);
    } else if (rec.region !== undefined && rec.region !== region) {
      unowned(d, `the player's sessions are recorded in ${rec.region}`, player);
    } else if (rec.phase === 'idle' && rec.diskState !== 'live') {
      out.push({
        finding: DiskFindings.unrecorded,
        diskName: d.name,
        playerId: player,
        seq: rec.seq,
        ...(d.zone === null ? {} : { zone: d.zone }),
        detail: `recorded as ${rec.diskState}`,
      });
    }
  }
  for (const rec of records.values()) {
    if (rec.phase !== 'idle' || rec.region !== region || rec.diskState === 'none') continue;
    const diskName = playerDiskName(rec.playerId);
    if (diskNames.has(diskName)) continue;
    const snapshot = playerSnapshotName(rec.playerId);
    const archived = snapshots.has(snapshot);
    if (rec.diskState === 'archived' && archived) continue;
    out.push({
      finding: DiskFindings.missing,
      diskName,
      playerId: rec.playerId,
      seq: rec.seq,
      ...(archived ? { snapshotName: snapshot } : {}),
      detail:
        rec.diskState === 'live'
          ? `recorded live; ${archived ? 'its archive remains' : 'no disk and no archive'}`
          : 'recorded archived; no disk and no archive',
    });
  }
  return out;
}

const keyOf = (f: { finding: string; diskName: string; playerId?: string; seq?: number }) =>
  `${f.finding}|${f.diskName.toLowerCase()}|${f.playerId ?? ''}|${f.seq ?? ''}`;

export interface Verdict {
  /** Seen by an earlier round at least the grace period ago, and again now. */
  act: Observation[];
  /** Seen first now, or too recently. */
  waiting: Observation[];
  /** For the next round: every current finding with when it was first seen, oldest first. */
  suspects: DiskSuspect[];
  /** Findings left out of `suspects` (more than MAX_DISK_SUSPECTS): they wait longer. */
  dropped: number;
}

/** Applies the grace period: what earlier rounds suspected and this one confirms. */
export function judge(
  observations: readonly Observation[],
  earlier: readonly DiskSuspect[],
  at: Date,
  graceMs: number,
): Verdict {
  const since = new Map(earlier.map((s) => [keyOf(s), s.since]));
  const act: Observation[] = [];
  const waiting: Observation[] = [];
  const current: DiskSuspect[] = [];
  const seen = new Set<string>();
  for (const o of observations) {
    const key = keyOf(o);
    if (seen.has(key)) continue;
    seen.add(key);
    const first = since.get(key);
    if (first !== undefined && at.getTime() - Date.parse(first) >= graceMs) act.push(o);
    else waiting.push(o);
    current.push({
      finding: o.finding,
      diskName: o.diskName,
      ...(o.playerId === undefined ? {} : { playerId: o.playerId }),
      ...(o.seq === undefined ? {} : { seq: o.seq }),
      since: first ?? at.toISOString(),
    });
  }
  // The oldest are kept, so a backlog larger than the cap still makes progress.
  current.sort((a, b) => a.since.localeCompare(b.since) || keyOf(a).localeCompare(keyOf(b)));
  return {
    act,
    waiting,
    suspects: current.slice(0, MAX_DISK_SUSPECTS),
    dropped: Math.max(0, current.length - MAX_DISK_SUSPECTS),
  };
}
