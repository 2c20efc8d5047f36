/**
 * Sessions and billing together, in a simulated world: a few players top up (Razorpay's
 * webhooks duplicated, reordered, late, and reconciliation fetches), press Play and Stop; the
 * region's allocator places their VMs, Azure creates and deletes them (now and then without
 * capacity), each VM's agent reports ready and sends heartbeats, with or without input; Spot VMs
 * are evicted; time passes, and every actor's durable timers fire when due (settlements, credit
 * warnings and the out-of-credit stop, idle and heartbeat-loss timers, the allocator's). The
 * messages between the actors are delivered in a random interleaving: each actor's inbox in
 * order, but now and then one overtaking those before it, as an outbox row published late
 * does. Each handler runs as the runtime runs it (state in, emissions and timers out).
 *
 * Then a quiet stretch: every message delivered at once, the players on a rig playing on
 * (heartbeats with input) until their credit ends, and finally everyone presses Stop.
 * Whatever happened (docs/billing.md, docs/sessions.md):
 *
 * - after every step of billing, its balance equals the sum of its ledger; every ledger row
 *   has its documented idempotency key, unique; no payment is credited twice, and every paid
 *   top-up is credited once, for its amount;
 * - whenever every message has been delivered, billing's meter runs exactly for the session on
 *   a rig (ready, playing), and no meter is left for a session that has ended;
 * - a session is charged exactly its time on a rig: from ready until it stopped, or until the
 *   eviction notice (kept between the last heartbeat and then) or the last heartbeat when the
 *   VM was lost; whole seconds of each rig × its price per hour, the sum rounded down to paise;
 *   nothing while starting, queued, provisioning, evicted or resuming;
 * - a start billing refused never gets a VM, a meter or a charge;
 * - with messages delivered promptly, a player whose credit runs out is stopped, and the
 *   balance ends at most the documented slack below zero: billing asks for the stop at zero
 *   (within `SLACK_MS`, 5 s) and the VM is metered until the session reports the close.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AllocCreateResult,
  AllocDeleteResult,
  AllocRequest,
  AllocUsage,
  AzureCreateVm,
  AzureDeleteVm,
  BillingLinkStatus,
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterResume,
  BillingPaymentEvent,
  BillingPaymentLinkCreated,
  BillingPaymentLinkFailed,
  BillingTopup,
  RazorpayCreateLink,
  RazorpayFetchLink,
  SessionAdmission,
  SessionAgentReady,
  SessionHeartbeat,
  SessionPreempt,
  SessionStart,
  SessionStop,
  SessionVmReleased,
  StopReasons,
  TimerFired,
  type MessageDef,
  type MessageOf,
} from '../../contracts/index.ts';
import { createAllocatorActor } from '../../actors/allocator/actor.ts';
import {
  defaultAllocatorConfig,
  initialAllocState,
  type AllocState,
} from '../../actors/allocator/state.ts';
import { SLACK_MS, availablePaise } from '../../actors/billing/credit.ts';
import { ratePerHour } from '../../actors/billing/meter.ts';
import { billingActor } from '../../actors/billing/actor.ts';
import { BillingSim } from '../../actors/billing/testkit.ts';
import type { Emission, HandlerContext, TimerOp } from '../../actors/runtime/index.ts';
import { createSessionActor } from '../../actors/session/actor.ts';
import {
  defaultSessionConfig,
  initialSessionState,
  type SessionState,
} from '../../actors/session/state.ts';
import { T0 } from '../../actors/session/testkit.ts';
import { decodeEmitted, messageSteps, SetTimers, type MessageStep } from '../support/property.ts';

const PLAYERS = ['p1', 'p2', 'p3'];
const CHATS = ['1001', '1002', '1003'];
const REGION = defaultSessionConfig.region;
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
/** How often a VM's agent reports while the world is quiet (the agent's ~30 s). */
const HEARTBEAT_MS = 30 * SECOND;
/** How long the quiet stretch lets the players play on. */
const QUIET_MS = 4 * HOUR;

const session = createSessionActor({ ...defaultSessionConfig });
const allocator = createAllocatorActor({ ...defaultAllocatorConfig });
/** Small top-ups, so that credit runs out within the world's hours and admission refuses. */
const BILLING = { topupMinPaise: 500, topupPresetsPaise: [500, 1_000, 2_000] };
/** What billing takes (its own messages and the runtime's timer), by type. */
const BILLING_INPUTS = new Map<string, MessageDef>(
  billingActor.messages.defs.map((d): [string, MessageDef] => [d.type, d]),
);

type SessionMessage = ReturnType<typeof session.decode>;
type Fired = MessageOf<typeof TimerFired>;

interface Envelope {
  type: string;
  data: Uint8Array;
  subject: string;
}

/**
 * A player's own input (Play, Stop, a top-up): a message step (its definition named by type, so
 * a counterexample prints readably), sent `advanceMs` after the step before.
 */
interface Input {
  kind: 'input';
  player: number;
  msg: Omit<MessageStep, 'def'> & { type: string };
}

/** What the world does next. */
type Step =
  | Input
  | { kind: 'deliver'; pick: number; late: number | undefined }
  | { kind: 'razorpay'; pick: number; fail: boolean }
  | { kind: 'pay'; pick: number; again: boolean; events: number }
  | { kind: 'webhook_again'; pick: number }
  | { kind: 'azure'; pick: number; capacity: boolean }
  | { kind: 'agent_ready'; pick: number }
  | { kind: 'heartbeat'; pick: number; input: boolean }
  | { kind: 'evict'; pick: number }
  | { kind: 'wait'; ms: number }
  | { kind: 'quiet' };

const think = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 20 * SECOND }));
const input = (def: MessageDef, value: fc.Arbitrary<unknown>, weight: number) => {
  const m = messageSteps(def, value, think, weight);
  return {
    weight: m.weight,
    arbitrary: fc.record({
      kind: fc.constant('input' as const),
      player: fc.nat({ max: PLAYERS.length - 1 }),
      msg: m.arbitrary.map(({ def, ...rest }) => ({ ...rest, type: def.type })),
    }),
  };
};

const step: fc.Arbitrary<Step> = fc.oneof(
  input(SessionStart, fc.constant({ requestedBy: 'player' }), 3),
  input(SessionStop, fc.constant({ requestedBy: 'player', reason: 'player' }), 1),
  input(BillingTopup, fc.record({ amountPaise: fc.constantFrom(...BILLING.topupPresetsPaise) }), 3),
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('deliver' as const),
      pick: fc.nat(),
      // Now and then a message overtakes the ones before it in its actor's inbox: a row
      // whose publish failed goes out later, from the outbox sweeper, after newer ones.
      late: fc.option(fc.nat(), { freq: 8, nil: undefined }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('razorpay' as const),
      pick: fc.nat(),
      fail: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('pay' as const),
      pick: fc.nat(),
      // A second payment of a paid link (two tabs, a retry): held for an operator, never
      // credited; otherwise Razorpay's webhooks for the payment come again.
      again: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
      events: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('webhook_again' as const), pick: fc.nat() }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('azure' as const),
      pick: fc.nat(),
      capacity: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('agent_ready' as const), pick: fc.nat() }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('heartbeat' as const),
      pick: fc.nat(),
      input: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('evict' as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('wait' as const),
      // Seconds (a heartbeat's gap), minutes (settlements, heartbeat loss, the credit's
      // warnings), a quarter of an hour and more (idle timeout, credit running out).
      ms: fc.oneof(
        fc.integer({ min: SECOND, max: 40 * SECOND }),
        fc.integer({ min: 40 * SECOND, max: 5 * MINUTE }),
        fc.integer({ min: 5 * MINUTE, max: 25 * MINUTE }),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'quiet' as const }) },
);

/** A time a session was on a rig, and its price then. */
interface Rig {
  start: number;
  end: number | undefined;
  price: number;
}

/** A payment link the world made, and the payments made on it. */
interface Link {
  player: string;
  topupId: string;
  linkId: string;
  amount: number;
  payments: string[];
}

interface Vm {
  sessionId: string;
  playerId: string;
  /** Its agent: not reported yet, reported ready (it sends heartbeats), or its VM evicted. */
  agent: 'booting' | 'ready' | 'evicted';
}

/** An actor's durable timers (as SetTimers keeps them), with when the next one is due. */
class ActorTimers {
  private readonly set = new SetTimers();
  private readonly due = new Map<string, number>();

  apply(ops: readonly TimerOp[] | undefined): void {
    this.set.apply(ops);
    for (const t of ops ?? []) {
      if ('cancel' in t) this.due.delete(t.name);
      else this.due.set(t.name, t.at.getTime());
    }
  }

  next(): number | undefined {
    return this.due.size === 0 ? undefined : Math.min(...this.due.values());
  }

  /** The timer due first, fired at `now` (the runtime's `runtime.timer.v1`). */
  fire(now: number): Fired | undefined {
    const f = this.set.fire(0, now);
    if (f === undefined) return undefined;
    const fired = TimerFired.schema.parse(Object.assign({ type: TimerFired.type }, f.value));
    this.due.delete(fired.name);
    return fired;
  }
}

/** What the world saw happen, over all runs: the test must reach what it claims to check. */
const seen = {
  rigs: 0,
  preempts: 0,
  hbLost: 0,
  refused: 0,
  evictions: 0,
  outOfCredit: 0,
  credited: 0,
  charged: 0,
  late: 0,
};

const onRig = (s: SessionState): boolean => s.phase === 'ready' || s.phase === 'playing';

/**
 * When the rig stopped serving the player, as the docs bill it: the eviction notice (kept
 * between the last heartbeat, or ready, and now), the last heartbeat when the VM was lost
 * (heartbeats stopped, or the allocator found it gone), else now (a stop). The last heartbeat
 * is the session's `lastHeartbeatAt`, as it keeps it.
 */
function rigEnd(before: SessionState, msg: SessionMessage, now: number): number {
  const lastSign = before.lastHeartbeatAt ?? before.readyAt;
  const floor = lastSign === undefined ? now : Date.parse(lastSign);
  if (msg.type === SessionPreempt.type) {
    return msg.at === undefined ? now : Math.min(now, Math.max(floor, Date.parse(msg.at)));
  }
  const lost =
    msg.type === SessionVmReleased.type || (msg.type === TimerFired.type && msg.name === 'hb_lost');
  return lost ? floor : now;
}

/** Whole seconds of each rig × its price per hour, the sum rounded down to paise. */
function chargeFor(rigs: readonly Rig[]): number {
  const units = rigs.reduce(
    (sum, r) => sum + Math.max(0, Math.floor((r.end! - r.start) / SECOND)) * r.price,
    0,
  );
  return Math.floor(units / 3_600);
}

class World {
  now = T0.getTime();
  sessions = new Map<string, SessionState>(PLAYERS.map((p) => [p, initialSessionState()]));
  sessionTimers = new Map<string, ActorTimers>(PLAYERS.map((p) => [p, new ActorTimers()]));
  alloc: AllocState = initialAllocState();
  allocTimers = new ActorTimers();
  billing = new Map<string, BillingSim>(
    PLAYERS.map((p) => [p, new BillingSim(BILLING, p, new Date(T0.getTime()))]),
  );
  /** Each actor's inbox (`session:<p>`, `billing:<p>`, `alloc`), in order. */
  inbox = new Map<string, Envelope[]>();
  /** Azure's work in flight, and the VMs it runs. */
  azure: { type: string; vmName: string; sessionId: string; playerId: string }[] = [];
  running = new Map<string, Vm>();
  /** Razorpay's effects not answered yet. */
  razorpay: Envelope[] = [];
  links: Link[] = [];
  /** Every webhook sent to billing, by player (to send again, as Razorpay retries). */
  webhooks: { player: string; e: Envelope }[] = [];
  /** Each session's times on a rig. */
  rigs = new Map<string, Rig[]>();
  /** Starts billing refused. */
  refused = new Set<string>();
  /** Sessions billing was told to meter (an open or a resume reached it). */
  metered = new Set<string>();
  /**
   * Sessions whose close reached billing before their open or any resume: never charged, as
   * documented (docs/billing.md: an open arriving after its close is refused).
   */
  unmetered = new Set<string>();
  ledgerKeys = new Set<string>();
  inputSeq = 0;
  ids = 0;
  firings = 0;
  log: string[] = [];

  /** The last of what happened (about one player, or one session, when named). */
  trail(about?: string): string {
    const lines = about === undefined ? this.log : this.log.filter((l) => l.includes(about));
    return `\n${lines.slice(-80).join('\n')}`;
  }

  private ctx(kind: 'session' | 'alloc', key: string, subject: string): HandlerContext {
    return {
      kind,
      key,
      now: new Date(this.now),
      msgId: `m-${++this.ids}`,
      subject,
      redeliveries: 0,
    };
  }

  queue(to: string, e: Envelope): void {
    const q = this.inbox.get(to) ?? [];
    q.push(e);
    this.inbox.set(to, q);
  }

  send(to: string, def: MessageDef, value: unknown): Envelope {
    const [kind, key] = to.split(':');
    const subject =
      to === 'alloc' ? `respawn.alloc.${REGION}.cmd.x` : `respawn.${kind}.${key}.cmd.x`;
    const e = { type: def.type, data: def.encode(value), subject };
    this.queue(to, e);
    return e;
  }

  /** Where an actor's emissions go, and what crosses: a refused start gets nothing. */
  route(emitted: readonly Emission[] | undefined): void {
    for (const e of emitted ?? []) {
      const t = e.subject.split('.');
      if (
        e.type === AllocRequest.type ||
        e.type === AzureCreateVm.type ||
        e.type === BillingMeterOpen.type ||
        e.type === BillingMeterResume.type
      ) {
        const { sessionId } = decodeEmitted(e) as { sessionId: string };
        expect(
          this.refused.has(sessionId),
          `${e.type} for refused ${sessionId}:${this.trail(sessionId)}`,
        ).toBe(false);
      }
      if (e.type === SessionStop.type) {
        const stop = SessionStop.decode(e.data);
        if (stop.reason === StopReasons.outOfCredit) {
          seen.outOfCredit++;
          this.log.push(`  billing ${t[2]} asks to stop: ${stop.note ?? ''}`);
        }
      }
      if (t[1] === 'session' && t[3] === 'cmd') this.queue(`session:${t[2]}`, e);
      else if (t[1] === 'billing' && t[3] === 'cmd') this.queue(`billing:${t[2]}`, e);
      else if (t[1] === 'alloc' && t[3] === 'cmd') this.queue('alloc', e);
      else if (t[1] === 'out' && t[2] === 'razorpay') this.razorpay.push(e);
      else if (t[1] === 'out' && t[2] === 'azure') {
        if (e.type !== AzureCreateVm.type && e.type !== AzureDeleteVm.type) continue;
        const v = decodeEmitted(e) as { vmName: string; sessionId: string; playerId?: string };
        this.azure.push({
          type: e.type,
          vmName: v.vmName,
          sessionId: v.sessionId,
          playerId: v.playerId ?? '',
        });
      }
      // Telegram, events: not this world's concern.
    }
  }

  toSession(p: string, data: Uint8Array, subject: string): void {
    const before = this.sessions.get(p)!;
    const msg = session.decode(data);
    const r = session.handle(before, msg, this.ctx('session', p, subject));
    const after = r.state;
    this.sessions.set(p, after);
    this.sessionTimers.get(p)!.apply(r.timers);
    if (after.phase !== before.phase) {
      const id = after.sessionId ?? before.sessionId;
      this.log.push(
        `  ${id ?? p}: ${before.phase} → ${after.phase} at ${new Date(this.now).toISOString()}`,
      );
    }
    if (!onRig(before) && onRig(after)) {
      seen.rigs++;
      const id = after.sessionId!;
      this.rigs.set(id, [
        ...(this.rigs.get(id) ?? []),
        { start: this.now, end: undefined, price: after.pricePerHourPaise ?? 0 },
      ]);
    }
    if (onRig(before) && !onRig(after)) {
      const rig = this.rigs.get(before.sessionId!)?.at(-1);
      expect(rig?.end, `${before.sessionId} left a rig it was not on:${this.trail()}`).toBe(
        undefined,
      );
      rig!.end = rigEnd(before, msg, this.now);
      if (after.phase === 'resuming') seen.evictions++;
      if (msg.type === SessionPreempt.type) seen.preempts++;
      if (msg.type === TimerFired.type && msg.name === 'hb_lost') seen.hbLost++;
    }
    if (
      msg.type === SessionAdmission.type &&
      before.phase === 'starting' &&
      after.phase === 'idle'
    ) {
      this.refused.add(before.sessionId!);
      seen.refused++;
    }
    this.route(r.emit);
  }

  toAlloc(data: Uint8Array, subject: string): void {
    const r = allocator.handle(
      this.alloc,
      allocator.decode(data),
      this.ctx('alloc', REGION, subject),
    );
    this.alloc = r.state;
    this.allocTimers.apply(r.timers);
    this.route(r.emit);
  }

  /** After billing handled something: balance = Σ ledger, each new row keyed as documented. */
  billed(p: string, sim: BillingSim, rowsBefore: number): void {
    expect(sim.state.balancePaise, `${p}: balance ≠ Σ ledger:${this.trail()}`).toBe(
      sim.ledgerSum(),
    );
    for (const row of sim.ledger.slice(rowsBefore)) {
      const expected =
        row.reason === 'topup'
          ? `topup:${row.paymentId}`
          : row.reason === 'usage'
            ? new RegExp(`^usage:${p}:${row.sessionId}:[1-9][0-9]*$`)
            : row.reason === 'refund'
              ? `refund:${row.refundId}`
              : new RegExp(`^adjustment:${p}:.+$`);
      expect(row.key, `${p}: ${row.reason} row keyed ${row.key}`).toMatch(expected);
      expect(this.ledgerKeys.has(row.key), `${row.key} written twice:${this.trail()}`).toBe(false);
      this.ledgerKeys.add(row.key);
      this.log.push(`  ${p} ledger: ${row.key} ${row.amountPaise}`);
    }
  }

  toBilling(p: string, e: Envelope): void {
    const sim = this.billing.get(p)!;
    const def = BILLING_INPUTS.get(e.type);
    if (def === undefined) throw new Error(`billing takes no ${e.type}`);
    const { sessionId } = decodeEmitted(e) as { sessionId?: string };
    if (sessionId !== undefined && e.type.startsWith('billing.meter_')) {
      if (e.type === BillingMeterOpen.type || e.type === BillingMeterResume.type) {
        if (!this.unmetered.has(sessionId)) this.metered.add(sessionId);
      } else if (e.type === BillingMeterClose.type && !this.metered.has(sessionId)) {
        this.unmetered.add(sessionId);
      }
    }
    sim.now = new Date(this.now);
    const rows = sim.ledger.length;
    const out = sim.send(def, def.decode(e.data));
    this.billed(p, sim, rows);
    this.route(out);
  }

  deliver(pick: number, late?: number): boolean {
    const ready = [...this.inbox].filter(([, q]) => q.length > 0);
    if (ready.length === 0) return false;
    const [to, q] = ready[pick % ready.length]!;
    const at = late === undefined ? 0 : late % q.length;
    if (at > 0) seen.late++;
    const e = q.splice(at, 1)[0]!;
    this.now += 100;
    this.log.push(
      `${to} ← ${e.type} ${JSON.stringify(decodeEmitted(e))}${at > 0 ? ' (late)' : ''}`,
    );
    const [kind, key] = to.split(':');
    if (kind === 'session') this.toSession(key!, e.data, e.subject);
    else if (kind === 'billing') this.toBilling(key!, e);
    else this.toAlloc(e.data, e.subject);
    return true;
  }

  /** The timer due first across every actor, if due by `until`: fired at its time. */
  fireNext(until: number): boolean {
    let first: { due: number; fire: () => void } | undefined;
    const consider = (due: number | undefined, fire: () => void): void => {
      if (due !== undefined && due <= until && (first === undefined || due < first.due)) {
        first = { due, fire };
      }
    };
    for (const p of PLAYERS) {
      const timers = this.sessionTimers.get(p)!;
      consider(timers.next(), () => {
        const fired = timers.fire(this.now)!;
        this.log.push(`session:${p} ⏰ ${fired.name}`);
        this.toSession(p, TimerFired.encode(fired), `respawn.session.${p}.cmd.timer`);
      });
      const sim = this.billing.get(p)!;
      const next = [...sim.timers].sort(
        ([, x], [, y]) => x.at.getTime() - y.at.getTime() || x.id - y.id,
      )[0];
      if (next === undefined) continue;
      const [name, t] = next;
      consider(t.at.getTime(), () => {
        sim.timers.delete(name);
        this.log.push(`billing:${p} ⏰ ${name}`);
        this.toBilling(p, {
          type: TimerFired.type,
          subject: `respawn.billing.${p}.cmd.timer`,
          data: TimerFired.encode({
            timerId: String(t.id),
            name,
            dueAt: t.at.toISOString(),
            firedAt: new Date(this.now).toISOString(),
          }),
        });
      });
    }
    consider(this.allocTimers.next(), () => {
      const fired = this.allocTimers.fire(this.now)!;
      this.toAlloc(TimerFired.encode(fired), `respawn.alloc.${REGION}.cmd.timer`);
    });
    if (first === undefined) return false;
    // A timer set again for the moment it fired would hold the world (and the actor) there.
    if (++this.firings > 50_000) throw new Error(`timers fire without end:${this.trail()}`);
    this.now = Math.max(this.now, first.due);
    first.fire();
    return true;
  }

  /** Time passes: every timer due meanwhile fires at its time, in order. */
  advance(ms: number): void {
    const until = this.now + ms;
    while (this.fireNext(until));
    this.now = Math.max(this.now, until);
  }

  press(player: number, m: Input['msg']): void {
    this.advance(m.advanceMs);
    const p = PLAYERS[player]!;
    const chatId = CHATS[player]!;
    this.inputSeq += 1;
    const v = m.value as Record<string, unknown>;
    this.log.push(`${p} presses ${m.type} ${JSON.stringify(v)}`);
    if (m.type === BillingTopup.type) {
      this.send(`billing:${p}`, BillingTopup, { ...v, requestId: `r${this.inputSeq}`, chatId });
    } else if (m.type === SessionStart.type) {
      this.send(`session:${p}`, SessionStart, { ...v, chatId, inputSeq: this.inputSeq });
    } else {
      this.send(`session:${p}`, SessionStop, { ...v, inputSeq: this.inputSeq });
    }
  }

  /** Razorpay answers an effect: a link made (or refused), or a link fetched. */
  razorpayAnswers(pick: number, fail: boolean): void {
    if (this.razorpay.length === 0) return;
    const e = this.razorpay.splice(pick % this.razorpay.length, 1)[0]!;
    if (e.type === RazorpayCreateLink.type) {
      const c = RazorpayCreateLink.decode(e.data);
      this.log.push(`razorpay: link for ${c.playerId}/${c.topupId}${fail ? ' refused' : ''}`);
      if (fail) {
        this.send(`billing:${c.playerId}`, BillingPaymentLinkFailed, {
          topupId: c.topupId,
          error: { code: 'BAD_REQUEST_ERROR', message: 'refused', retryable: false },
        });
        return;
      }
      const linkId = `plink_L${++this.ids}`;
      this.links.push({
        player: c.playerId,
        topupId: c.topupId,
        linkId,
        amount: c.amountPaise,
        payments: [],
      });
      this.send(`billing:${c.playerId}`, BillingPaymentLinkCreated, {
        topupId: c.topupId,
        referenceId: c.referenceId,
        linkId,
        shortUrl: `https://rzp.example/i/${linkId}`,
        amountPaise: c.amountPaise,
        currency: c.currency,
      });
    } else if (e.type === RazorpayFetchLink.type) {
      const f = RazorpayFetchLink.decode(e.data);
      const link = this.links.find((l) => l.linkId === f.linkId)!;
      this.log.push(`razorpay: fetch ${f.linkId} (${link.payments.length} payments)`);
      this.send(`billing:${f.playerId}`, BillingLinkStatus, {
        topupId: f.topupId,
        linkId: f.linkId,
        status: link.payments.length > 0 ? 'paid' : 'created',
        amountPaidPaise: link.payments.length > 0 ? link.amount : 0,
        currency: 'INR',
        payments: link.payments.map((paymentId) => ({
          paymentId,
          amountPaise: link.amount,
          status: 'captured',
        })),
      });
    }
  }

  /** The player pays a link; Razorpay's webhooks for it (one to three, either kind) follow. */
  pay(pick: number, again: boolean, events: number): void {
    if (this.links.length === 0) return;
    const link = this.links[pick % this.links.length]!;
    if (link.payments.length === 0 || again) link.payments.push(`pay_P${++this.ids}`);
    const paymentId = link.payments.at(-1)!;
    this.log.push(`${link.player} pays ${link.linkId} (${paymentId})`);
    for (let i = 0; i < events; i++) {
      const e = this.send(`billing:${link.player}`, BillingPaymentEvent, {
        event: (pick + i) % 2 === 0 ? 'payment_link.paid' : 'payment.captured',
        topupId: link.topupId,
        paymentId,
        linkId: link.linkId,
        amountPaise: link.amount,
        currency: 'INR',
        eventId: `evt_${++this.ids}`,
      });
      this.webhooks.push({ player: link.player, e });
    }
  }

  /** Razorpay retries a webhook (for 24 h, in any order): the same event again. */
  webhookAgain(pick: number): void {
    if (this.webhooks.length === 0) return;
    const w = this.webhooks[pick % this.webhooks.length]!;
    this.log.push(`razorpay retries ${JSON.stringify(decodeEmitted(w.e))}`);
    this.queue(`billing:${w.player}`, w.e);
  }

  azureAnswers(pick: number, capacity: boolean): void {
    if (this.azure.length === 0) return;
    const job = this.azure.splice(pick % this.azure.length, 1)[0]!;
    this.log.push(`azure: ${job.type} ${job.vmName}${capacity ? ' (no capacity)' : ''}`);
    if (job.type === AzureDeleteVm.type) {
      this.running.delete(job.vmName);
      this.send('alloc', AllocDeleteResult, {
        sessionId: job.sessionId,
        vmName: job.vmName,
        ok: true,
      });
      return;
    }
    if (capacity) {
      this.send('alloc', AllocCreateResult, {
        sessionId: job.sessionId,
        vmName: job.vmName,
        ok: false,
        error: { kind: 'capacity', code: 'AllocationFailed', message: 'no capacity' },
      });
      return;
    }
    this.running.set(job.vmName, {
      sessionId: job.sessionId,
      playerId: job.playerId,
      agent: 'booting',
    });
    this.send('alloc', AllocCreateResult, {
      sessionId: job.sessionId,
      vmName: job.vmName,
      ok: true,
    });
  }

  vms(agent: Vm['agent']): [string, Vm][] {
    return [...this.running].filter(([, vm]) => vm.agent === agent);
  }

  /** A VM's agent reports the streaming host up (a path of its own: it may overtake the allocator). */
  agentReady(pick: number): void {
    const booting = this.vms('booting');
    if (booting.length === 0) return;
    const [vmName, vm] = booting[pick % booting.length]!;
    vm.agent = 'ready';
    this.log.push(`agent of ${vmName}: ready`);
    this.send(`session:${vm.playerId}`, SessionAgentReady, {
      sessionId: vm.sessionId,
      vmName,
      host: '10.0.0.4',
      port: 47989,
      pin: '1234',
    });
  }

  heartbeat(vmName: string, vm: Vm, input: boolean): void {
    const at = new Date(this.now).toISOString();
    this.send(`session:${vm.playerId}`, SessionHeartbeat, {
      sessionId: vm.sessionId,
      vmName,
      at,
      ...(input ? { lastInputAt: at } : {}),
    });
  }

  evict(pick: number): void {
    const spot = [...this.running].filter(
      ([name, vm]) => name.endsWith('spotnc4') && vm.agent !== 'evicted',
    );
    if (spot.length === 0) return;
    const [vmName, vm] = spot[pick % spot.length]!;
    vm.agent = 'evicted';
    this.log.push(`azure: evicts ${vmName}`);
    this.send(`session:${vm.playerId}`, SessionPreempt, {
      sessionId: vm.sessionId,
      vmName,
      eventId: `ev-${vmName}`,
      at: new Date(this.now).toISOString(),
    });
  }

  /** Delivers every message and answers Azure, Razorpay and the agents until nothing is left. */
  settle(): void {
    for (let i = 0; i < 20_000; i++) {
      if (this.deliver(0)) continue;
      if (this.azure.length > 0) this.azureAnswers(0, false);
      else if (this.razorpay.length > 0) this.razorpayAnswers(0, false);
      else if (this.vms('booting').length > 0) this.agentReady(0);
      else return;
    }
    throw new Error(`the world did not settle:${this.trail()}`);
  }

  /** Once every message is delivered: a meter runs exactly for the session on a rig. */
  checkMeters(): void {
    for (const p of PLAYERS) {
      const s = this.sessions.get(p)!;
      const meters = Object.values(this.billing.get(p)!.state.meters);
      const running = meters.filter((m) => m.runningSince !== null).map((m) => m.sessionId);
      const trail = `\nmeters ${JSON.stringify(meters)}${this.trail(s.sessionId ?? p)}`;
      expect(running, `${p} ${s.phase} (${s.sessionId}): meters running:${trail}`).toEqual(
        onRig(s) ? [s.sessionId] : [],
      );
      const ended = meters
        .map((m) => m.sessionId)
        .filter((id) => s.phase === 'idle' || id !== s.sessionId);
      expect(ended, `${p} ${s.phase}: meters of sessions that ended:${trail}`).toEqual([]);
    }
  }

  /** Every paid link credited once, for its amount, by one of its payments; nothing else. */
  checkCredits(): void {
    for (const p of PLAYERS) {
      const credits = this.billing.get(p)!.ledger.filter((l) => l.reason === 'topup');
      const paid = this.links.filter((l) => l.player === p && l.payments.length > 0);
      expect(credits.length, `${p}: credits for ${paid.length} paid links:${this.trail()}`).toBe(
        paid.length,
      );
      for (const link of paid) {
        const c = credits.filter((l) => l.topupId === link.topupId);
        expect(c.length, `${link.topupId} credited ${c.length} times`).toBe(1);
        expect(c[0]!.amountPaise).toBe(link.amount);
        expect(link.payments).toContain(c[0]!.paymentId);
      }
      seen.credited += credits.length;
    }
  }

  /** Each session charged exactly its time on a rig; a refused start nothing. */
  checkCharges(): void {
    for (const p of PLAYERS) {
      const sim = this.billing.get(p)!;
      const charged = new Set(
        sim.ledger.filter((l) => l.reason === 'usage').map((l) => l.sessionId!),
      );
      for (const id of new Set([...charged, ...this.rigs.keys()])) {
        if (!id.startsWith(`${p}-`)) continue;
        const rigs = this.rigs.get(id) ?? [];
        expect(this.refused.has(id) && rigs.length > 0, `refused ${id} was on a rig`).toBe(false);
        const segs = rigs.map(
          (r) => `${new Date(r.start).toISOString()}–${new Date(r.end!).toISOString()} @${r.price}`,
        );
        expect(sim.usageCharged(id), `${id} on rigs ${segs.join(', ')}:${this.trail(id)}`).toBe(
          this.unmetered.has(id) ? 0 : chargeFor(rigs),
        );
        seen.charged += sim.usageCharged(id);
      }
    }
  }

  /**
   * Nothing more comes from the players but play: every message is delivered at once, the
   * agents of the VMs on which players play send a heartbeat with input every 30 s, timers fire
   * when due; until everyone is idle or the hours have passed. A player whose credit runs out is
   * stopped, and ends at most the documented slack below zero (or below where they were).
   */
  playOn(): void {
    this.settle();
    this.checkMeters();
    const start = this.now;
    const floor = new Map(
      PLAYERS.map((p) => {
        const sim = this.billing.get(p)!;
        return [p, Math.min(0, availablePaise(sim.state, new Date(this.now)))];
      }),
    );
    const rate = new Map(PLAYERS.map((p) => [p, 0]));
    let slowest = 0;
    let beat = this.now;
    while (this.now < start + QUIET_MS) {
      if (PLAYERS.every((p) => this.sessions.get(p)!.phase === 'idle')) break;
      for (const p of PLAYERS) {
        const meters = Object.values(this.billing.get(p)!.state.meters);
        rate.set(p, Math.max(rate.get(p)!, ratePerHour(meters)));
      }
      if (!this.fireNext(beat)) {
        this.now = Math.max(this.now, beat);
        for (const [vmName, vm] of this.vms('ready')) this.heartbeat(vmName, vm, true);
        beat = this.now + HEARTBEAT_MS;
      }
      const before = this.now;
      this.settle();
      slowest = Math.max(slowest, this.now - before);
    }
    while (this.fireNext(this.now)) this.settle();
    this.checkMeters();
    for (const p of PLAYERS) {
      const s = this.sessions.get(p)!;
      const sim = this.billing.get(p)!;
      const available = availablePaise(sim.state, new Date(this.now));
      if (onRig(s)) {
        expect(available, `${p} plays on with no credit:${this.trail(p)}`).toBeGreaterThan(0);
      }
      // At zero billing asks for the stop (within SLACK_MS), and the meter runs until the
      // session's close, which the quiet world delivers within `slowest`.
      const slack = Math.ceil((rate.get(p)! * (SLACK_MS + slowest)) / HOUR);
      expect(
        sim.state.balancePaise,
        `${p} ran ${-sim.state.balancePaise} paise below zero (slack ${slack}):${this.trail(p)}`,
      ).toBeGreaterThanOrEqual(floor.get(p)! - slack);
    }
  }

  /** Everyone presses Stop at last; once all is delivered, nobody is metered. */
  stopAll(): void {
    for (const [i] of PLAYERS.entries()) {
      this.press(i, {
        kind: 'msg',
        type: SessionStop.type,
        value: { requestedBy: 'player', reason: 'player' },
        advanceMs: 0,
      });
    }
    this.settle();
    for (const p of PLAYERS) {
      const s = this.sessions.get(p)!;
      expect(s.phase, `${p} after Stop:${this.trail(s.sessionId ?? p)}`).toBe('idle');
    }
    this.checkMeters();
  }
}

function run(steps: readonly Step[]): void {
  const w = new World();
  // Room for two Spot and two On-Demand VMs: three players sometimes wait in line.
  w.send('alloc', AllocUsage, {
    at: T0.toISOString(),
    usages: [
      { name: 'lowPriorityCores', current: 0, limit: 8 },
      { name: 'standardNCASv3_T4Family', current: 0, limit: 8 },
    ],
  });
  // Two players topped up already (₹20 is 40 minutes of Spot; ₹10 covers Spot only), the
  // third has nothing yet.
  for (const [player, amountPaise] of [2_000, 1_000].entries()) {
    w.press(player, { kind: 'msg', type: BillingTopup.type, value: { amountPaise }, advanceMs: 0 });
    w.settle();
    w.pay(w.links.length - 1, false, 1);
  }
  w.settle();
  for (const s of steps) {
    if (s.kind === 'input') w.press(s.player, s.msg);
    else if (s.kind === 'deliver') w.deliver(s.pick, s.late);
    else if (s.kind === 'razorpay') w.razorpayAnswers(s.pick, s.fail);
    else if (s.kind === 'pay') w.pay(s.pick, s.again, s.events);
    else if (s.kind === 'webhook_again') w.webhookAgain(s.pick);
    else if (s.kind === 'azure') w.azureAnswers(s.pick, s.capacity);
    else if (s.kind === 'agent_ready') w.agentReady(s.pick);
    else if (s.kind === 'heartbeat') {
      const ready = w.vms('ready');
      const vm = ready[s.pick % Math.max(1, ready.length)];
      if (vm !== undefined) w.heartbeat(vm[0], vm[1], s.input);
    } else if (s.kind === 'evict') w.evict(s.pick);
    else if (s.kind === 'wait') w.advance(s.ms);
    else {
      w.settle();
      w.checkMeters();
    }
  }
  w.playOn();
  w.stopAll();
  w.checkCredits();
  w.checkCharges();
}

describe('sessions and billing in a simulated world', () => {
  it('charge each session its time on a rig, stop those out of credit, and credit each payment once', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 150, size: 'max' }), (steps) =>
        run(steps),
      ),
      // A passing run takes seconds; a failing one is shrunk for as long as the file may take
      // (each candidate replays its world's hours).
      { numRuns: 150, interruptAfterTimeLimit: 45_000 },
    );
    // The world reached what it claims to check.
    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(0);
  });
});
