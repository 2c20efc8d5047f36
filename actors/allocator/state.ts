/** The allocator's state (one per region) and its configuration. */
import { z } from 'zod';
import { DiskSuspect } from '../../contracts/index.ts';

export const Reservation = z.object({
  sessionId: z.string(),
  playerId: z.string(),
  allocation: z.number().int(),
  candidate: z.string(),
  quotaName: z.string(),
  cores: z.number().int(),
  nicName: z.string(),
  status: z.enum(['creating', 'running', 'deleting']),
  /** Candidates that already failed for this request, tried no more this round. */
  tried: z.array(z.string()),
  diskZone: z.string().optional(),
  attempts: z.number().int(),
  since: z.string(),
  /** When its request arrived (its place in line, should this rig fail). */
  queuedAt: z.string().optional(),
  /**
   * Its session let go while the VM was being created: deleted once the create reports (or
   * its retry comes due), never while it may be in flight. A delete racing a create can find
   * nothing and leave the VM made for nobody, or fail on the create's operation.
   */
  release: z.literal(true).optional(),
  /** The player takes Spot only (carried back to the line if this candidate fails). */
  spotOnly: z.literal(true).optional(),
  /**
   * Being deleted after it ran (a player let it go, not Azure): once gone, its capacity is free
   * again, so its candidate is no longer cold (a create that failed there for capacity may
   * now succeed).
   */
  frees: z.literal(true).optional(),
  /**
   * The latest round a release let go of with this VM among its own: the session's stop (or
   * failed start) waits for that round's news, and this VM's delete is it once it is the last.
   */
  releasedUpTo: z.number().int().optional(),
});
export type Reservation = z.infer<typeof Reservation>;

export const QueueEntry = z.object({
  sessionId: z.string(),
  playerId: z.string(),
  allocation: z.number().int(),
  diskZone: z.string().optional(),
  tried: z.array(z.string()),
  queuedAt: z.string(),
  /** The player takes Spot only: On-Demand candidates are not for this entry. */
  spotOnly: z.literal(true).optional(),
});
export type QueueEntry = z.infer<typeof QueueEntry>;

export const AllocState = z.object({
  /** Quota as Azure last reported it, by usage name. */
  usage: z.record(z.string(), z.object({ current: z.number().int(), limit: z.number().int() })),
  /** Cores of each quota used by VMs that are not ours, at the last report. */
  external: z.record(z.string(), z.number().int()),
  usageAt: z.string().optional(),
  /** By VM name. Reserved cores count against quota from reservation to deletion. */
  reservations: z.record(z.string(), Reservation),
  /** Candidate id → until when it is cold (ISO time). */
  cold: z.record(z.string(), z.string()),
  queue: z.array(QueueEntry),
  refreshing: z.boolean(),
  /** Reconciler: VMs with our tags and no reservation, by name → first seen (ISO time). */
  orphans: z.record(z.string(), z.string()).optional(),
  /** Set by an operator's drain: no new VM is placed in this region meanwhile. */
  draining: z.object({ since: z.string(), reason: z.string() }).optional(),
  /** Reconciler: running reservations whose VM Azure no longer lists → first missed. */
  missing: z.record(z.string(), z.string()).optional(),
  /**
   * Disk reconciler: present once its rounds are scheduled (timer `disks`); what the last
   * round suspected, handed to the next so two rounds a grace period apart can agree.
   */
  disks: z.object({ suspects: z.array(DiskSuspect) }).optional(),
  /** When the newest places were served from the line (ISO times, oldest first): the estimate. */
  servedAt: z.array(z.string()).optional(),
  /**
   * Sessions released before their request arrived → the round released and when. A request
   * of that round or an earlier one is refused; an entry is forgotten after `RELEASED_KEEP_MS`.
   */
  released: z
    .record(z.string(), z.object({ allocation: z.number().int(), at: z.string() }))
    .optional(),
  /**
   * VMs a failed create left, being deleted (name → session): no reservation gets their name
   * until Azure reports them gone, so that report is never taken for a newer VM's.
   */
  partials: z.record(z.string(), z.string()).optional(),
});
export type AllocState = z.infer<typeof AllocState>;

/** How long a release that found nothing to release is remembered (see `released`). */
export const RELEASED_KEEP_MS = 60 * 60_000;

export const initialAllocState = (): AllocState => ({
  usage: {},
  external: {},
  reservations: {},
  cold: {},
  queue: [],
  refreshing: false,
});

export interface Candidate {
  /** Stable id, also part of VM names: lowercase letters, digits. */
  id: string;
  tier: 'spot' | 'on_demand';
  size: string;
  zone?: string;
  cores: number;
  /** Azure usage name whose limit this candidate spends. */
  quotaName: string;
  pricePerHourPaise: number;
}

export interface AllocatorConfig {
  /** In priority order: Spot first, then On-Demand, then other sizes or zones. */
  candidates: readonly Candidate[];
  /** How long a candidate that failed for capacity or quota is skipped. */
  coldMs: number;
  /** How often usage and inventory are refreshed from Azure. */
  refreshMs: number;
  /**
   * Told to queued players: roughly how long each place in the line takes, until the line has
   * moved enough to tell from how it moved (steps.ts `secondsPerPlace`).
   */
  estimateSecondsPerPosition: number;
  /** Transient failures of one create or delete before giving up. */
  maxAttempts: number;
  /**
   * The reconciler acts on what two inventories at least this far apart agree on: an orphan
   * VM is deleted, a reservation whose VM is gone is dropped and its session resumed.
   */
  reconcileGraceMs: number;
  /** How often players' disks in Azure are compared with their recorded state; 0: never. */
  diskReconcileMs: number;
  /** A disk finding is acted on once two rounds at least this far apart agree on it. */
  diskGraceMs: number;
}

export const defaultAllocatorConfig: AllocatorConfig = {
  candidates: [
    {
      id: 'spotnc4',
      tier: 'spot',
      size: 'Standard_NC4as_T4_v3',
      cores: 4,
      quotaName: 'lowPriorityCores',
      pricePerHourPaise: 3_000,
    },
    {
      id: 'odnc4',
      tier: 'on_demand',
      size: 'Standard_NC4as_T4_v3',
      cores: 4,
      quotaName: 'standardNCASv3_T4Family',
      pricePerHourPaise: 9_000,
    },
  ],
  coldMs: 10 * 60_000,
  refreshMs: 5 * 60_000,
  estimateSecondsPerPosition: 300,
  maxAttempts: 5,
  reconcileGraceMs: 10 * 60_000,
  diskReconcileMs: 60 * 60_000,
  diskGraceMs: 30 * 60_000,
};
