/** Commands to a player's session actor: `respawn.session.<playerId>.cmd.<verb>`. */
import { z } from 'zod';
import {
  SESSION_ID_MAX_LENGTH,
  resourceNameSchema as resourceName,
  sessionIdSchema as sessionId,
  vmNameSchema as vmName,
} from './ids.ts';
import { defineMessage } from './message.ts';

export { SESSION_ID_MAX_LENGTH };

export const SessionVerbs = {
  start: 'start',
  stop: 'stop',
  status: 'status',
  settings: 'settings',
  admission: 'admission',
  allocated: 'allocated',
  queued: 'queued',
  allocFailed: 'alloc_failed',
  agentReady: 'agent_ready',
  heartbeat: 'heartbeat',
  preempt: 'preempt',
  vmReleased: 'vm_released',
  vmCheck: 'vm_check',
  diskArchived: 'disk_archived',
  diskMissing: 'disk_missing',
  diskFound: 'disk_found',
} as const;
export type SessionVerb = (typeof SessionVerbs)[keyof typeof SessionVerbs];

/** Who asked: the player, or another service acting for an operator. */
export const Requesters = { player: 'player', operator: 'operator', system: 'system' } as const;
const requester = z.enum(Requesters);

export const StopReasons = {
  player: 'player',
  idleTimeout: 'idle_timeout',
  outOfCredit: 'out_of_credit',
  evictionUnresumable: 'eviction_unresumable',
  operator: 'operator',
} as const;
export type StopReason = (typeof StopReasons)[keyof typeof StopReasons];

/**
 * The order of a player's own inputs (Telegram's update_id), on a start or stop routed from
 * them: two routers may publish one player's Play and Stop in either order, and the session
 * ignores one older than an input it applied moments before (docs/sessions.md).
 */
const inputSeq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional();

export const SessionStart = defineMessage('session.start.v1', {
  requestedBy: requester,
  inputSeq,
  /** Telegram chat to answer in, when the request came from Telegram. */
  chatId: z.string().min(1).max(64).optional(),
  region: z
    .string()
    .regex(/^[a-z0-9]{2,32}$/)
    .optional(),
});

export const SessionStop = defineMessage('session.stop.v1', {
  requestedBy: requester,
  inputSeq,
  reason: z.enum(StopReasons),
  note: z.string().max(500).optional(),
  /**
   * Billing's out-of-credit stop: the sessions it still meters. Any of them not running any
   * more has its meter closed by the session (at its end, when known), so no meter outlives
   * its session.
   */
  meteredSessionIds: z.array(sessionId).max(8).optional(),
  /**
   * The session this stop is for (the Stop button under a ready message): a stop for a session
   * that has ended stops nothing else. Without it, whatever runs is stopped.
   */
  sessionId: sessionId.optional(),
});

export const SessionStatus = defineMessage('session.status.v1', {
  requestedBy: requester,
  chatId: z.string().min(1).max(64).optional(),
});

/**
 * Player → session: their tier policy. `spotOnly`: take Spot rigs only, waiting in line for
 * one rather than paying On-Demand (about 3×), for the next rig (a start, or a resume after an
 * eviction); without it, the policy is told as it is.
 */
export const SessionSettings = defineMessage('session.settings.v1', {
  requestedBy: requester,
  chatId: z.string().min(1).max(64).optional(),
  spotOnly: z.boolean().optional(),
});

const iso = z.iso.datetime();

/** The lifecycle phases; `respawn.session.<playerId>.evt.<phase>` announces each change. */
export const SessionPhases = {
  idle: 'idle',
  starting: 'starting',
  queued: 'queued',
  provisioning: 'provisioning',
  ready: 'ready',
  playing: 'playing',
  stopping: 'stopping',
  evicted: 'evicted',
  resuming: 'resuming',
} as const;
export type SessionPhase = (typeof SessionPhases)[keyof typeof SessionPhases];

export const SessionTiers = { spot: 'spot', onDemand: 'on_demand' } as const;

/** Allocator → session: a VM of this tier and price is being created for the session. */
export const SessionAllocated = defineMessage('session.allocated.v1', {
  sessionId,
  region: z.string().regex(/^[a-z0-9]{2,32}$/),
  tier: z.enum(SessionTiers),
  size: z.string().min(1).max(64),
  zone: z.string().max(8).optional(),
  pricePerHourPaise: z.number().int().positive(),
  vmName,
});

/** Allocator → session: no capacity anywhere; waiting in line. */
export const SessionQueued = defineMessage('session.queued.v1', {
  sessionId,
  position: z.number().int().min(1),
  estimateSeconds: z.number().int().min(0),
});

/** Allocator → session: the request cannot be served (not a capacity wait). */
export const SessionAllocFailed = defineMessage('session.alloc_failed.v1', {
  sessionId,
  reason: z.string().min(1).max(500),
});

/** Allocator → session: the VM of this session is gone (released, or never created). */
export const SessionVmReleased = defineMessage('session.vm_released.v1', {
  sessionId,
  vmName: vmName.optional(),
  /**
   * The latest allocation round this news covers (the gone VM's, or the release's that let it
   * go). A stopping session ends on news of its current round. Absent (an older allocator):
   * taken as the current round.
   */
  allocation: z.number().int().min(1).max(1000).optional(),
  /**
   * The session's VMs the allocator still holds after this one (an evicted round's VM still
   * being deleted, or the current round's while an older round's is reported gone): a
   * stopping session ends only at 0. Absent (an older allocator): taken as 0.
   */
  stillHeld: z.number().int().min(0).max(1000).optional(),
});

/**
 * Allocator → session: a VM of this session is running; a session that no longer owns it (it
 * ended, or its record is gone) gives it back with a release. Sent by the VM reconciler for
 * each running VM past the grace period, every inventory (docs/sessions.md, "Reconciler").
 */
export const SessionVmCheck = defineMessage('session.vm_check.v1', {
  sessionId,
  vmName,
  region: z.string().regex(/^[a-z0-9]{2,32}$/),
});

/** VM agent → session: the streaming host is up; how the player connects. */
export const SessionAgentReady = defineMessage('session.agent_ready.v1', {
  sessionId,
  vmName,
  host: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535),
  pin: z.string().regex(/^\d{4,8}$/),
});

/** VM agent → session: still alive; when the player last gave input. */
export const SessionHeartbeat = defineMessage('session.heartbeat.v1', {
  sessionId,
  vmName,
  at: iso,
  lastInputAt: iso.optional(),
});

/** VM agent → session: Azure Scheduled Events announced a Preempt (about 30 s of notice). */
export const SessionPreempt = defineMessage('session.preempt.v1', {
  sessionId,
  vmName,
  eventId: z.string().min(1).max(128),
  notBefore: iso.optional(),
  /** When the agent saw the notice (its report's time): billing pauses then, not on arrival. */
  at: iso.optional(),
});

/** Session → everyone: the session changed phase (`evt.<phase>`), or answered a status. */
export const SessionChanged = defineMessage('session.changed.v1', {
  sessionId: sessionId.optional(),
  phase: z.enum(SessionPhases),
  previous: z.enum(SessionPhases).optional(),
  reason: z.string().max(500).optional(),
  tier: z.enum(SessionTiers).optional(),
  pricePerHourPaise: z.number().int().positive().optional(),
  vmName: vmName.optional(),
  at: iso,
});

/** Effects runner → session: the player's unused disk was snapshotted and deleted (or not). */
export const SessionDiskArchived = defineMessage('session.disk_archived.v1', {
  diskName: resourceName,
  snapshotName: resourceName,
  ok: z.boolean(),
  reason: z.string().max(500).optional(),
});

/** Sessions the player had started when the reconciler looked: one started since makes it stale. */
const seenSeq = z.number().int().min(0);

/**
 * Disk reconciler → session: the disk the state records is gone from Azure (two inventories a
 * grace period apart agree). The state becomes `archived` when the archive is still there
 * (`snapshotName`), else `none`; ignored unless idle with the same session count.
 */
export const SessionDiskMissing = defineMessage('session.disk_missing.v1', {
  diskName: resourceName,
  seq: seenSeq,
  snapshotName: resourceName.optional(),
});

/**
 * Disk reconciler → session: Azure has the player's disk, which the state does not record (a
 * crash between creating it and recording it): adopt it (`live`, its zone and region), so its
 * clean-up timers run and allocation goes to its zone. Ignored unless idle with the same count.
 */
export const SessionDiskFound = defineMessage('session.disk_found.v1', {
  diskName: resourceName,
  seq: seenSeq,
  region: z.string().regex(/^[a-z0-9]{2,32}$/),
  zone: z.string().max(8).optional(),
});
