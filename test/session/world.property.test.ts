/**
 * Sessions and the allocator together, in a simulated world: a few players press Play and
 * Stop at random moments; the messages between the session actors and the region's allocator
 * are delivered in a random interleaving (each actor's inbox in order, as a partition is, but
 * now and then one overtaking those before it, as an outbox row published late does);
 * Azure's creates succeed, fail for capacity, are throttled or fail on Azure's side, a created
 * VM's agent reports ready, Spot VMs are evicted at random, deletes complete or fail for a
 * while; the timers each actor set fire at random moments (a provisioning timeout, heartbeats
 * lost, a wait in line given up, the allocator's retries). Each actor's handler runs as the
 * runtime runs it.
 * Once every message has been delivered, whatever happened:
 *
 * - no VM runs for nobody: a player whose session is idle holds no VM;
 * - no player holds two VMs, and a player on a rig (ready, playing) holds exactly the VM the
 *   session plays on, running;
 * - no VM is still being deleted, nor created twice.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AllocCreateResult,
  AllocDeleteResult,
  AllocUsage,
  AzureCreateVm,
  AzureDeleteVm,
  SessionAgentReady,
  SessionPreempt,
  SessionStart,
  SessionStop,
  TimerFired,
  type MessageDef,
} from '../../contracts/index.ts';
import { createAllocatorActor } from '../../actors/allocator/actor.ts';
import {
  defaultAllocatorConfig,
  initialAllocState,
  type AllocState,
} from '../../actors/allocator/state.ts';
import type { HandlerResult } from '../../actors/runtime/index.ts';
import { createSessionActor } from '../../actors/session/actor.ts';
import {
  defaultSessionConfig,
  initialSessionState,
  type SessionState,
} from '../../actors/session/state.ts';
import { decodeEmitted, SetTimers } from '../support/property.ts';

const REGION = defaultSessionConfig.region;
const PLAYERS = ['p1', 'p2', 'p3', 'p4'];
const session = createSessionActor({ ...defaultSessionConfig, requireAdmission: false });
const allocator = createAllocatorActor({ ...defaultAllocatorConfig });
const T0 = new Date('2026-03-01T18:00:00Z').getTime();

interface Envelope {
  type: string;
  data: Uint8Array;
  subject: string;
}

/** What the world does next. */
type Step =
  | { kind: 'deliver'; pick: number; late: number | undefined }
  | { kind: 'press'; player: number; play: boolean }
  | { kind: 'azure'; pick: number; outcome: number }
  | { kind: 'evict'; pick: number }
  | { kind: 'timer'; actor: number; pick: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('deliver' as const),
      pick: fc.nat(),
      // Now and then a message overtakes the ones before it: the outbox publishes a batch's
      // messages when it commits, and a row whose publish failed goes out later, from the
      // sweeper, after newer ones.
      late: fc.option(fc.nat(), { freq: 10, nil: undefined }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('press' as const),
      player: fc.nat({ max: PLAYERS.length - 1 }),
      play: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('azure' as const),
      pick: fc.nat(),
      // 0–4: as asked; then capacity, throttled, a fault on Azure's side.
      outcome: fc.integer({ min: 0, max: 7 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('evict' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('timer' as const),
      actor: fc.nat({ max: PLAYERS.length }),
      pick: fc.nat(),
    }),
  },
);

/** Azure's answers other than "done": an error kind, and its code. */
const FAILURES = [
  { kind: 'capacity', code: 'AllocationFailed', message: 'no capacity' },
  { kind: 'throttled', code: 'TooManyRequests', message: 'slow down', retryAfterMs: 2_000 },
  { kind: 'transient', code: 'InternalServerError', message: 'try again' },
] as const;

class World {
  sessions = new Map<string, SessionState>(PLAYERS.map((p) => [p, initialSessionState()]));
  alloc: AllocState = initialAllocState();
  /** Each actor's inbox (a player's session, or `alloc`), in order. */
  inbox = new Map<string, Envelope[]>();
  /** Azure's work in flight: creates and deletes asked for, not yet answered. */
  azure: { type: string; vmName: string; sessionId: string; playerId: string }[] = [];
  /** VMs Azure runs, with whose agent reports to which session. */
  running = new Map<string, { sessionId: string; playerId: string }>();
  now = T0;
  /** The timers each actor (a player's session, or `alloc`) set and did not cancel. */
  timers = new Map<string, SetTimers>([...PLAYERS, 'alloc'].map((a) => [a, new SetTimers()]));
  log: string[] = [];
  inputSeq = 0;

  post(e: Envelope): void {
    const t = e.subject.split('.');
    if (t[1] === 'session' && t[3] === 'cmd') this.queue(t[2]!, e);
    else if (t[1] === 'alloc' && t[3] === 'cmd') this.queue('alloc', e);
    else if (t[1] === 'out' && t[2] === 'azure') {
      const v = decodeEmitted(e) as {
        vmName: string;
        sessionId: string;
        playerId?: string;
      };
      if (e.type === AzureCreateVm.type) {
        // The same name again is the same resource (a retry); a second one while it exists is not.
        const exists =
          this.running.has(v.vmName) ||
          this.azure.some((j) => j.type === AzureCreateVm.type && j.vmName === v.vmName);
        expect(exists, `${v.vmName} created while it exists:${this.trail()}`).toBe(false);
      }
      if (e.type === AzureCreateVm.type || e.type === AzureDeleteVm.type) {
        this.azure.push({
          type: e.type,
          vmName: v.vmName,
          sessionId: v.sessionId,
          playerId: v.playerId ?? '',
        });
      }
    }
    // Billing, Telegram, events: not this world's concern.
  }

  queue(to: string, e: Envelope): void {
    const q = this.inbox.get(to) ?? [];
    q.push(e);
    this.inbox.set(to, q);
  }

  send(to: string, def: MessageDef, value: unknown): void {
    const subject =
      to === 'alloc' ? `respawn.alloc.${REGION}.cmd.x` : `respawn.session.${to}.cmd.x`;
    this.queue(to, { type: def.type, data: def.encode(value), subject });
  }

  trail(): string {
    return `\n${this.log.slice(-60).join('\n')}`;
  }

  deliver(pick: number, late?: number): boolean {
    const ready = [...this.inbox].filter(([, q]) => q.length > 0);
    if (ready.length === 0) return false;
    const [to, q] = ready[pick % ready.length]!;
    const e = q.splice(late === undefined ? 0 : late % q.length, 1)[0]!;
    this.now += 100;
    this.handle(to, e);
    return true;
  }

  /**
   * Fires one of the timers `to` set (of those `only` takes), at once or when it is due; as
   * the runtime does, at that moment, not behind the messages waiting in the actor's inbox.
   */
  fire(to: string, pick: number, only?: (name: string) => boolean): boolean {
    const t = this.timers.get(to)!.fire(pick, this.now, only);
    if (t === undefined) return false;
    this.now = t.at;
    const subject =
      to === 'alloc' ? `respawn.alloc.${REGION}.cmd.timer` : `respawn.session.${to}.cmd.timer`;
    const def: MessageDef = TimerFired;
    this.handle(to, { type: def.type, data: def.encode(t.value), subject });
    return true;
  }

  handle(to: string, e: Envelope): void {
    const msg = decodeEmitted(e);
    const ctx = {
      now: new Date(this.now),
      msgId: 'm',
      subject: e.subject,
      redeliveries: 0,
    };
    this.log.push(`${to} ← ${e.type} ${JSON.stringify(msg)}`);
    let r: HandlerResult<unknown>;
    if (to === 'alloc') {
      r = allocator.handle(this.alloc, msg as never, { ...ctx, kind: 'alloc', key: REGION });
      this.alloc = r.state as AllocState;
    } else {
      const before = this.sessions.get(to)!;
      r = session.handle(before, msg as never, {
        ...ctx,
        kind: 'session',
        key: to,
      });
      const after = r.state as SessionState;
      this.sessions.set(to, after);
      // A session ends once the allocator holds nothing for it: until then its VM may still
      // hold the player's disk, which the next session needs.
      if (before.phase === 'stopping' && after.phase !== 'stopping') {
        const kept = Object.entries(this.alloc.reservations).filter(
          ([, v]) => v.sessionId === before.sessionId,
        );
        expect(
          kept.map(([n, v]) => `${n} ${v.status}`),
          `${to}'s session ended while the allocator still holds:${this.trail()}`,
        ).toEqual([]);
      }
    }
    this.timers.get(to)!.apply(r.timers);
    for (const em of r.emit ?? []) this.post(em);
  }

  azureAnswers(pick: number, outcome: number): void {
    if (this.azure.length === 0) return;
    const job = this.azure.splice(pick % this.azure.length, 1)[0]!;
    const isDelete = job.type === AzureDeleteVm.type;
    // A delete is not refused for capacity: it fails on Azure's side, or is throttled.
    const failure =
      outcome < 5 ? undefined : FAILURES[isDelete ? Math.max(1, outcome - 5) : outcome - 5];
    this.log.push(`azure: ${job.type} ${job.vmName}${failure ? ` (${failure.kind})` : ''}`);
    if (failure !== undefined) {
      this.send('alloc', isDelete ? AllocDeleteResult : AllocCreateResult, {
        sessionId: job.sessionId,
        vmName: job.vmName,
        ok: false,
        error: failure,
      });
      return;
    }
    if (isDelete) {
      this.running.delete(job.vmName);
      this.send('alloc', AllocDeleteResult, {
        sessionId: job.sessionId,
        vmName: job.vmName,
        ok: true,
      });
      return;
    }
    this.running.set(job.vmName, { sessionId: job.sessionId, playerId: job.playerId });
    this.send('alloc', AllocCreateResult, {
      sessionId: job.sessionId,
      vmName: job.vmName,
      ok: true,
    });
    // Its agent boots and reports (a separate path: it may overtake the allocator's answer).
    this.send(job.playerId, SessionAgentReady, {
      sessionId: job.sessionId,
      vmName: job.vmName,
      host: '10.0.0.4',
      port: 47989,
      pin: '1234',
    });
  }

  evict(pick: number): void {
    const spot = [...this.running].filter(([name]) => name.endsWith('spotnc4'));
    if (spot.length === 0) return;
    const [vmName, vm] = spot[pick % spot.length]!;
    this.log.push(`azure: evicts ${vmName}`);
    this.send(vm.playerId, SessionPreempt, {
      sessionId: vm.sessionId,
      vmName,
      eventId: `ev-${vmName}`,
      at: new Date(this.now).toISOString(),
    });
  }

  press(player: string, play: boolean): void {
    this.inputSeq += 1;
    this.log.push(`${player} presses ${play ? 'Play' : 'Stop'}`);
    if (play)
      this.send(player, SessionStart, {
        requestedBy: 'player',
        chatId: '42',
        inputSeq: this.inputSeq,
      });
    else
      this.send(player, SessionStop, {
        requestedBy: 'player',
        reason: 'player',
        inputSeq: this.inputSeq,
      });
  }

  /**
   * Delivers every message, answers all of Azure's work, and fires the allocator's retries and
   * warm-ups, until nothing is left (a session's own timers, and the allocator's periodic
   * ones, are not part of settling: they would go on for ever).
   */
  settle(): void {
    const retries = (name: string): boolean => name.startsWith('retry:') || name === 'warm';
    for (let i = 0; i < 5_000; i++) {
      if (this.deliver(0)) continue;
      if (this.azure.length > 0) {
        this.azureAnswers(0, 0);
        continue;
      }
      if (this.fire('alloc', 0, retries)) continue;
      return;
    }
    throw new Error(`the world did not settle:${this.trail()}`);
  }

  check(): void {
    const trail = this.trail();
    const held = Object.entries(this.alloc.reservations);
    expect(
      held.filter(([, r]) => r.status === 'deleting'),
      `still deleting:${trail}`,
    ).toEqual([]);
    const live = held.filter(([, r]) => r.release !== true);
    for (const p of PLAYERS) {
      const s = this.sessions.get(p)!;
      const mine = live.filter(([, r]) => r.playerId === p);
      expect(
        mine.length,
        `${p} (${s.phase}) holds ${mine.length} VMs:${trail}`,
      ).toBeLessThanOrEqual(1);
      if (s.phase === 'idle') expect(mine, `${p} idle yet holds a VM:${trail}`).toEqual([]);
      // Every message delivered, every delete done: a stop has had its answer.
      expect(s.phase, `${p} still stopping:${trail}`).not.toBe('stopping');
      if (s.phase === 'ready' || s.phase === 'playing') {
        expect(
          mine.map(([n, r]) => [n, r.status]),
          `${p} on a rig:${trail}`,
        ).toEqual([[s.vmName, 'running']]);
      }
    }
  }
}

function run(steps: readonly Step[]): void {
  const w = new World();
  // Room for two Spot and two On-Demand VMs: four players sometimes wait in line.
  w.send('alloc', AllocUsage, {
    at: new Date(T0).toISOString(),
    usages: [
      { name: 'lowPriorityCores', current: 0, limit: 8 },
      { name: 'standardNCASv3_T4Family', current: 0, limit: 8 },
    ],
  });
  for (const s of steps) {
    if (s.kind === 'deliver') w.deliver(s.pick, s.late);
    else if (s.kind === 'press') w.press(PLAYERS[s.player]!, s.play);
    else if (s.kind === 'azure') w.azureAnswers(s.pick, s.outcome);
    else if (s.kind === 'evict') w.evict(s.pick);
    else w.fire([...PLAYERS, 'alloc'][s.actor]!, s.pick);
  }
  w.settle();
  w.check();
}

describe('sessions and the allocator in a simulated world', () => {
  it('leave no VM running for nobody, none twice, and each player on a rig on its one VM', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 120, size: 'max' }), (steps) =>
        run(steps),
      ),
      { numRuns: 500 },
    );
  });
});
