/** What the player reads. Kept apart so wording changes never touch the state machine. */
import { duration, rupees } from '../../contracts/index.ts';
import type { SessionState } from './state.ts';

/** Why a session stopped, in the player's words; an unknown reason is shown as it is. */
const STOP_WHY: Readonly<Record<string, string>> = {
  player: 'you pressed Stop',
  idle_timeout: 'no input for a while',
  out_of_credit: 'your balance ran out; top up to play again',
  eviction_unresumable: 'Azure reclaimed the rig and no other GPU was free',
  operator: 'stopped by support',
  provision_timeout: 'the rig took too long to boot',
};
const stopWhy = (reason: string): string => STOP_WHY[reason] ?? reason.replace(/_/g, ' ');

export type QueueWhy = 'busy' | 'spot_only' | 'balance';
const QUEUE_WHY: Readonly<Record<QueueWhy, string>> = {
  busy: 'All GPUs are busy.',
  spot_only: 'No Spot GPU is free, and you chose Spot only (/tier to allow On-Demand).',
  balance:
    'No Spot GPU is free, and your balance covers Spot only, so you wait for one rather than start On-Demand.',
};

const tierName = (tier: string | undefined): string => (tier === 'spot' ? 'Spot' : 'On-Demand');

export const texts = {
  starting: 'Starting your rig… I will tell you when it is ready.',
  /** A Play while a session is not idle: what it is doing already, in the player's words. */
  already: (s: SessionState): string => {
    switch (s.phase) {
      case 'queued':
        return `You are already in line for a GPU (number ${s.queuePosition ?? '?'}). I will tell you when it is your turn.`;
      case 'provisioning':
        return 'Your rig is already booting. I will tell you when it is ready.';
      case 'ready':
      case 'playing':
        return `Your session is already ${s.phase === 'ready' ? 'ready' : 'playing'}: connect to ${s.connect?.host}:${s.connect?.port}, PIN ${s.connect?.pin}.`;
      case 'stopping':
        return s.startNext === undefined
          ? 'Your session is stopping. Press Play again in a moment.'
          : 'Your last session is still stopping; your new one starts as soon as it has.';
      case 'evicted':
      case 'resuming':
        return 'Your session is already moving to a new rig; your disk is safe.';
      default:
        return `Your session is already ${s.phase}. Send /status for details.`;
    }
  },
  nothingToStop: 'Nothing is running.',
  /** A Stop button under an earlier session's message: that one ended, nothing else is touched. */
  endedAlready:
    'That session has ended already; nothing else was stopped. Send /stop to stop what runs now.',
  stoppingAlready: 'Your session is stopping already; I will tell you when it has.',
  /** A Stop after a Play pressed while stopping: the next session will not start. */
  startForgotten: 'Your next session will not start after all. Press Play when you want one.',
  /** The tier policy, as it is. */
  tier: (spotOnly: boolean): string =>
    spotOnly
      ? 'You take Spot rigs only: when none is free you wait in line rather than pay On-Demand (about 3× the price).'
      : 'You take a Spot rig when one is free, else On-Demand (about 3× the price) rather than wait.',
  /** The tier policy, as just set: from the next rig on. */
  tierSet: (s: SessionState): string =>
    (s.spotOnly === true
      ? 'Spot only from now on: when no Spot GPU is free you wait in line.'
      : 'Spot first, else On-Demand from now on: you wait only when no GPU at all is free.') +
    (['idle', 'stopping'].includes(s.phase) ? '' : ' This applies to your next rig.'),
  insufficient: (balancePaise: number, requiredPaise: number): string =>
    `Your balance is ${rupees(balancePaise)}; starting needs at least ${rupees(requiredPaise)}. Top up to play.`,
  allocated: (s: SessionState): string =>
    `Got ${s.tier === 'spot' ? 'a' : 'an'} ${tierName(s.tier)} GPU rig at ${rupees(s.pricePerHourPaise ?? 0)}/hour` +
    (s.tier === 'spot' ? ' (Azure may reclaim it; your disk is always kept).' : '.') +
    ' Booting…',
  /** The allocator fell back to another candidate while booting: a new price, told as news. */
  fellBack: (was: SessionState, now: SessionState): string =>
    `No ${tierName(was.tier)} GPU was free after all: you get ${now.tier === 'spot' ? 'a' : 'an'} ${tierName(now.tier)} rig at ${rupees(now.pricePerHourPaise ?? 0)}/hour instead. Booting…`,
  /**
   * A place in line, and why: every GPU is busy (`busy`), no Spot GPU is free and the player
   * chose Spot only (`spot_only`), or their balance covers Spot but not On-Demand (`balance`).
   */
  queued: (position: number, estimateSeconds: number, why: QueueWhy = 'busy'): string =>
    QUEUE_WHY[why] +
    ` You are number ${position} in line (about ${Math.max(1, Math.round(estimateSeconds / 60))} min).` +
    (why === 'balance' ? ' Top up to allow On-Demand.' : ''),
  failed: (reason: string, played: boolean): string =>
    played
      ? `Could not get you another rig: ${reason}. Your session has ended; your disk is saved.`
      : `Could not start your rig: ${reason}. You were not charged.`,
  ready: (s: SessionState): string =>
    `Your rig is ready (${tierName(s.tier)}, ${rupees(s.pricePerHourPaise ?? 0)}/hour). Connect with Moonlight to ${s.connect?.host}:${s.connect?.port}, pairing PIN ${s.connect?.pin}.`,
  resumed: (s: SessionState): string =>
    `Back online on a new ${tierName(s.tier)} rig (${rupees(s.pricePerHourPaise ?? 0)}/hour). Connect to ${s.connect?.host}:${s.connect?.port}, PIN ${s.connect?.pin}.`,
  /** The rig is gone: announced by Azure (`preempted`), or no sign of life (`heartbeat_lost`, `vm_gone`). */
  evicted: (why: string): string =>
    (why === 'preempted' ? 'Azure reclaimed your Spot rig.' : 'Your rig stopped responding.') +
    ' Your disk is safe and you are not charged while I find you another one…',
  idleWarning: (minutes: number): string =>
    `No input for a while: your session stops in ${minutes} minute${minutes === 1 ? '' : 's'} unless you play.`,
  stopping: 'Stopping your session… your disk is kept for next time.',
  /** `playedMs` undefined: the rig was never ready (nothing was played, nothing is charged). */
  stopped: (playedMs: number | undefined, reason: string | undefined): string =>
    (playedMs === undefined
      ? 'Session stopped before your rig was ready'
      : `Session stopped after ${duration(playedMs)}`) +
    (reason === undefined ? '' : `: ${stopWhy(reason)}`) +
    (playedMs === undefined ? '. You were not charged.' : '. Your disk is saved.'),
  diskWarning: (days: number): string =>
    `You have not played for a while: your saved games disk will be archived in ${days} day${days === 1 ? '' : 's'}. It is restored when you play again (the first start then takes a few minutes longer).`,
  diskArchived:
    'Your disk was archived to save costs. Your games and saves are kept in a snapshot and restored when you next press Play.',
  diskLost:
    'Sorry: your saved-games disk was lost in the cloud and no archive of it exists. Your next Play starts on a fresh disk.',
  diskRegion: (region: string): string =>
    `Your disk is in ${region}, so your game starts there: a disk cannot follow a VM to another region.`,
  restoring: 'Restoring your disk from its archive first: this start takes a few minutes longer.',
  status: (s: SessionState): string => {
    switch (s.phase) {
      case 'idle':
        return 'No session running. Press Play to start.';
      case 'queued':
        return `Waiting for a GPU: number ${s.queuePosition ?? '?'} in line.`;
      case 'ready':
      case 'playing':
        return `Running: ${tierName(s.tier)} at ${rupees(s.pricePerHourPaise ?? 0)}/hour. Connect to ${s.connect?.host}:${s.connect?.port}, PIN ${s.connect?.pin}.`;
      case 'starting':
        return 'Starting your rig…';
      case 'provisioning':
        return `Your ${tierName(s.tier)} rig at ${rupees(s.pricePerHourPaise ?? 0)}/hour is booting.`;
      case 'stopping':
        return (
          'Stopping your session… your disk is kept.' +
          (s.startNext === undefined ? '' : ' Your next one starts as soon as it has stopped.')
        );
      case 'evicted':
      case 'resuming':
        return 'Your last rig is gone; I am finding you another one. Your disk is safe and you are not charged meanwhile.';
    }
  },
};
