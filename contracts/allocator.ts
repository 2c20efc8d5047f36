/**
 * The VM allocator's commands (`respawn.alloc.<region>.cmd.<verb>`), its decisions
 * (`respawn.alloc.<region>.evt.<event>`), and the Azure effects it asks for
 * (`respawn.out.azure.<region>`), whose results come back as its commands.
 */
import { z } from 'zod';
import {
  resourceNameSchema as resourceName,
  playerIdSchema as playerId,
  sessionIdSchema as sessionId,
  vmNameSchema as vmName,
} from './ids.ts';
import { defineMessage } from './message.ts';

const iso = z.iso.datetime();

export const AllocVerbs = {
  request: 'request',
  release: 'release',
  createResult: 'create_result',
  deleteResult: 'delete_result',
  usage: 'usage',
  inventory: 'inventory',
  drain: 'drain',
  diskRound: 'disk_round',
} as const;

/** A 64-bit FNV-1a of `text` (two 32-bit lanes), in base 36: names, not secrets. */
export function nameHash(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x01000193) >>> 0;
    b = (b ^ (b >>> 13)) >>> 0;
  }
  return `${a.toString(36).padStart(7, '0')}${b.toString(36).padStart(7, '0')}`;
}

/** Ids that appear in Azure names as they are (Azure compares names without case). */
export const plainNameId = (id: string): boolean => /^[a-z0-9-]+$/.test(id);

/**
 * Whether `vmName` is a name the allocator gives the VMs of `sessionId` (actors/allocator,
 * vmNameFor: `vm-<session>-a<round>-<candidate>`, or `vm-h<hash of the session>-a…` for a
 * session id Azure would not take as it is). The gateway authenticates an agent's VM name;
 * this ties the session and player the report names to that VM.
 */
export function vmOfSession(vmName: string, sessionId: string): boolean {
  return (
    vmName.startsWith(`vm-${sessionId}-a`) || vmName.startsWith(`vm-h${nameHash(sessionId)}-a`)
  );
}

/** Whether `sessionId` is one of the player's sessions (`<player>-<n>`, the session actor's). */
export function sessionOfPlayer(sessionId: string, playerId: string): boolean {
  return (
    sessionId.startsWith(`${playerId}-`) && /^[0-9]+$/.test(sessionId.slice(playerId.length + 1))
  );
}

/**
 * The player's one persistent disk, as every area names it (a retried create is the same
 * disk). Azure ignores case in names, so an id with upper case or `_` gets a hash of itself
 * after an `_`, which no plain id's name has: two players never share a disk.
 */
export const playerDiskName = (playerId: string): string =>
  plainNameId(playerId)
    ? `disk-${playerId}`
    : `disk-${playerId.toLowerCase().replace(/_/g, '-')}_${nameHash(playerId)}`;

/** The snapshot an unused disk is archived to. */
export const playerSnapshotName = (playerId: string): string => `snap-${playerDiskName(playerId)}`;

/** Kinds of provider failure the allocator reacts to differently. */
export const ProviderErrorKinds = {
  capacity: 'capacity',
  quota: 'quota',
  throttled: 'throttled',
  notFound: 'not_found',
  conflict: 'conflict',
  transient: 'transient',
  other: 'other',
} as const;
const providerError = z.object({
  kind: z.enum(ProviderErrorKinds),
  code: z.string().max(128),
  message: z.string().max(1000),
  retryAfterMs: z.number().int().min(0).optional(),
});

/** Session → allocator: find a VM for this session (`allocation` counts resumes, from 1). */
export const AllocRequest = defineMessage('alloc.request.v1', {
  sessionId,
  playerId,
  allocation: z.number().int().min(1).max(1000),
  /** The zone of the player's disk, when it lives in one: only candidates there fit. */
  diskZone: z.string().max(8).optional(),
  /** The player's policy: Spot candidates only (wait in line rather than pay On-Demand). */
  spotOnly: z.boolean().optional(),
});

/** Session → allocator: the session no longer needs its VM (or its place in the queue). */
export const AllocRelease = defineMessage('alloc.release.v1', {
  sessionId,
  playerId,
  reason: z.string().max(64),
  /**
   * The allocation round let go of. Should its request arrive later (a worker died between
   * the two), the allocator refuses it instead of creating a VM nobody wants.
   */
  allocation: z.number().int().min(0).max(1000).optional(),
});

/** Effects runner → allocator: how a create ended. */
export const AllocCreateResult = defineMessage('alloc.create_result.v1', {
  sessionId,
  vmName,
  ok: z.boolean(),
  error: providerError.optional(),
});

/** Effects runner → allocator: how a delete ended. */
export const AllocDeleteResult = defineMessage('alloc.delete_result.v1', {
  sessionId,
  vmName,
  ok: z.boolean(),
  error: providerError.optional(),
});

/** Effects runner → allocator: the region's quota usage, as Azure reports it. */
export const AllocUsage = defineMessage('alloc.usage.v1', {
  at: iso,
  usages: z.array(
    z.object({
      name: z.string().min(1).max(128),
      current: z.number().int(),
      limit: z.number().int(),
    }),
  ),
});

/** Effects runner → allocator: the VMs Azure has in the region, for reconciliation. */
export const AllocInventory = defineMessage('alloc.inventory.v1', {
  at: iso,
  vms: z.array(
    z.object({
      name: vmName,
      sessionId: sessionId.optional(),
      purpose: z.string().max(64).optional(),
    }),
  ),
});

/**
 * Operator → allocator: drain the region (no new VM is placed there; requests, resumes
 * included, are refused with the reason, and those waiting in line are told), or undrain it.
 * Sessions already on a VM play on until they stop.
 */
export const AllocDrain = defineMessage('alloc.drain.v1', {
  draining: z.boolean(),
  reason: z.string().min(1).max(200),
});

/** Allocator → everyone: what it decided (`evt.reserved`, `evt.queued`, `evt.cold`, …). */
export const AllocDecided = defineMessage('alloc.decided.v1', {
  sessionId: sessionId.optional(),
  decision: z.enum(['reserved', 'queued', 'cold', 'warm', 'released', 'failed', 'orphan']),
  candidate: z.string().max(64).optional(),
  vmName: vmName.optional(),
  detail: z.string().max(500).optional(),
  at: iso,
});

/** Allocator → effects runner: create (or converge) this VM with the player's disk. */
export const AzureCreateVm = defineMessage('azure.create_vm.v1', {
  sessionId,
  playerId,
  vmName,
  nicName: resourceName,
  diskName: resourceName,
  size: z.string().min(1).max(64),
  priority: z.enum(['spot', 'regular']),
  zone: z.string().max(8).optional(),
  tags: z.record(z.string().regex(/^[a-z]{1,32}$/), z.string().max(256)),
});

/** Allocator → effects runner: delete this VM and its NIC; never the player's disk. */
export const AzureDeleteVm = defineMessage('azure.delete_vm.v1', {
  sessionId,
  /** The owner, when known: a player's effects run in order (they share one disk). */
  playerId: playerId.optional(),
  vmName,
  nicName: resourceName,
});

/** Allocator → effects runner: report usage (quota) and the VM inventory. */
export const AzureRefresh = defineMessage('azure.refresh.v1', {
  usage: z.boolean(),
  inventory: z.boolean(),
});

/**
 * What the disk reconciler can find wrong between Azure's tagged disks and the players' recorded
 * disk state: a recorded disk (or archive) Azure no longer has; a player's disk the state does
 * not record; a tagged disk no player's state accounts for (reported, never deleted).
 */
export const DiskFindings = {
  missing: 'missing',
  unrecorded: 'unrecorded',
  unowned: 'unowned',
} as const;
export type DiskFinding = (typeof DiskFindings)[keyof typeof DiskFindings];

/** Azure's rule for managed disk names (ours are `disk-<player>`; others may be there too). */
const azureDiskName = z.string().regex(/^[A-Za-z0-9._-]{1,80}$/);

/** A finding the reconciler saw, and since when: it acts once two rounds `graceMs` apart agree. */
export const DiskSuspect = z.object({
  finding: z.enum(DiskFindings),
  diskName: azureDiskName,
  playerId: playerId.optional(),
  /** The player's session count when seen: a session started since makes it a new finding. */
  seq: z.number().int().min(0).optional(),
  since: iso,
});
export type DiskSuspect = z.infer<typeof DiskSuspect>;

/** Suspects carried from round to round; more wait for a later round (payloads stay small). */
export const MAX_DISK_SUSPECTS = 200;

/**
 * Allocator → effects runner: one disk reconciliation round at `at` (the allocator's clock),
 * with what earlier rounds suspected.
 */
export const AzureReconcileDisks = defineMessage('azure.reconcile_disks.v1', {
  at: iso,
  graceMs: z.number().int().min(0),
  suspects: z.array(DiskSuspect).max(MAX_DISK_SUSPECTS),
});

const count = z.number().int().min(0);

/** Effects runner → allocator: what a disk round saw and did, and the suspects to remember. */
export const AllocDiskRound = defineMessage('alloc.disk_round.v1', {
  at: iso,
  suspects: z.array(DiskSuspect).max(MAX_DISK_SUSPECTS),
  counts: z.object({
    disks: count,
    snapshots: count,
    records: count,
    missing: count,
    unrecorded: count,
    unowned: count,
    /** Findings acted on this round (commands sent, disks reported). */
    acted: count,
    /** Findings still inside their grace period. */
    waiting: count,
  }),
});

export const DiskDecisions = {
  missing: 'disk_missing',
  adopted: 'disk_adopted',
  unowned: 'disk_unowned',
} as const;
export type DiskDecision = (typeof DiskDecisions)[keyof typeof DiskDecisions];

/**
 * Effects runner → operators (`respawn.alloc.<region>.evt.disk_<…>`): a recorded disk gone from
 * Azure (its session told), a disk adopted by its player's session, a disk nobody owns.
 */
export const AllocDiskDecided = defineMessage('alloc.disk_decided.v1', {
  decision: z.enum(DiskDecisions),
  diskName: azureDiskName,
  playerId: playerId.optional(),
  detail: z.string().max(500),
  at: iso,
});

/** Session → effects runner: snapshot the player's unused disk, then delete the disk. */
export const AzureArchiveDisk = defineMessage('azure.archive_disk.v1', {
  playerId,
  diskName: resourceName,
  snapshotName: resourceName,
});
