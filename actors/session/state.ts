/** The session actor's state and configuration. */
import { z } from 'zod';
import { SessionPhases, SessionTiers } from '../../contracts/index.ts';

export const SessionState = z.object({
  phase: z.enum(SessionPhases),
  /** Sessions started so far; the next session id is `<player>-<seq + 1>`. */
  seq: z.number().int().min(0),
  sessionId: z.string().optional(),
  chatId: z.string().optional(),
  region: z.string().optional(),
  /** 1 for the first VM of the session, +1 for each resume after an eviction. */
  allocation: z.number().int().min(0),
  tier: z.enum(SessionTiers).optional(),
  pricePerHourPaise: z.number().int().optional(),
  vmName: z.string().optional(),
  size: z.string().optional(),
  connect: z.object({ host: z.string(), port: z.number().int(), pin: z.string() }).optional(),
  meterOpen: z.boolean(),
  startedAt: z.string().optional(),
  /** When the current VM became ready (idle and input are judged from here). */
  readyAt: z.string().optional(),
  /** When the session's first VM became ready (it was played at all). */
  firstReadyAt: z.string().optional(),
  /**
   * Play time billed so far for rigs already gone (ready until evicted): what the player is
   * told the session lasted, with the current rig's time added at the stop.
   */
  playedMs: z.number().int().min(0).optional(),
  lastInputAt: z.string().optional(),
  lastHeartbeatAt: z.string().optional(),
  evictedAt: z.string().optional(),
  stopReason: z.string().optional(),
  /** When, and in which phase, a Play during this session was last answered "already …". */
  alreadyTold: z.object({ at: z.string(), phase: z.enum(SessionPhases) }).optional(),
  queuePosition: z.number().int().optional(),
  /** Where the player's disk lives; it outlives sessions and constrains allocation. */
  diskZone: z.string().optional(),
  /** none: never played; live: a managed disk exists; archived: only its snapshot does. */
  diskState: z.enum(['none', 'live', 'archived']).default('none'),
  /** When the player last stopped playing (for disk clean-up). */
  lastPlayedAt: z.string().optional(),
  /** The player's tier policy: Spot rigs only (they wait in line rather than pay On-Demand). */
  spotOnly: z.boolean().optional(),
  /** This session's balance covers Spot only (admission's answer): it takes Spot rigs only. */
  spotOnlyForBalance: z.literal(true).optional(),
  /**
   * Billing allowed this session's start, and its VM was asked for: billing's answer is taken
   * once (a later one, refusing, would leave the request behind with the allocator).
   */
  admitted: z.literal(true).optional(),
  /** The region the start named, when it named one (the disk's region may win over it). */
  askedRegion: z.string().optional(),
  /**
   * A Play while this session was stopping: the next session starts the moment this one has
   * stopped (a Stop meanwhile forgets it).
   */
  startNext: z.object({ chatId: z.string().optional(), region: z.string().optional() }).optional(),
  /** The last start or stop applied from the player's own inputs (`inputSeq`), and when. */
  lastInput: z.object({ seq: z.number().int(), at: z.string() }).optional(),
});
export type SessionState = z.infer<typeof SessionState>;

export const initialSessionState = (): SessionState => ({
  phase: 'idle',
  seq: 0,
  allocation: 0,
  meterOpen: false,
  diskState: 'none',
});

export interface SessionConfig {
  /** Region asked for when the start command names none. */
  region: string;
  /**
   * Regions served (an allocator and an Azure effects runner each), besides `region`: a start
   * naming another is refused. Absent: any.
   */
  regions?: readonly string[];
  /** Ask billing whether the player can afford to start. */
  requireAdmission: boolean;
  /** Price per hour of the cheapest tier, for billing's minimum-balance rule. */
  cheapestPricePerHourPaise: number;
  /**
   * Price per hour of the cheapest On-Demand candidate: a balance that covers billing's
   * minimum at Spot but not at this price keeps the session to Spot (it waits in line rather
   * than start On-Demand, which its balance would end within minutes). Absent: no On-Demand.
   */
  onDemandPricePerHourPaise?: number;
  /** No input reported for this long stops the session (after a warning). */
  idleTimeoutMs: number;
  /** The idle warning comes this long before the stop. */
  idleWarningMs: number;
  /** No heartbeat for this long: the VM is presumed gone (same path as an eviction). */
  heartbeatLossMs: number;
  /** A VM that does not report ready within this time is given up. */
  provisionTimeoutMs: number;
  /** Evictions a session survives; one more stops it. */
  maxResumes: number;
  /** A disk unused this long is snapshotted and deleted (restored on the next play). */
  diskIdleMs: number;
  /** The player is warned this long before. */
  diskWarningMs: number;
  /**
   * A Play while a session runs is answered at most once in this long: impatient presses (or a
   * storm from another service) would otherwise queue a message each in front of the ones that
   * matter, at Telegram's one message a second to a chat.
   */
  repeatReplyMs: number;
}

export const defaultSessionConfig: SessionConfig = {
  region: 'centralindia',
  requireAdmission: true,
  cheapestPricePerHourPaise: 3_000,
  onDemandPricePerHourPaise: 9_000,
  idleTimeoutMs: 15 * 60_000,
  idleWarningMs: 2 * 60_000,
  heartbeatLossMs: 90_000,
  provisionTimeoutMs: 10 * 60_000,
  maxResumes: 3,
  repeatReplyMs: 10_000,
  diskIdleMs: 30 * 24 * 3_600_000,
  diskWarningMs: 3 * 24 * 3_600_000,
};
