/**
 * For billing's pure tests: runs the handler the way the runtime would — messages through
 * the wire and the actor's own decode, state deep-frozen, durable timers kept and fired in
 * time order on a simulated clock, ledger rows checked against a unique idempotency key —
 * without any server.
 */
import type { MessageDef } from '../../contracts/index.ts';
import { TimerFired } from '../../contracts/index.ts';
import type { Emission, HandlerContext } from '../runtime/index.ts';
import { createBillingActor } from './actor.ts';
import type { BillingConfig } from './config.ts';
import { BillingRecord, type HoldRecord, type LedgerRecord, type ResolveRecord } from './ledger.ts';
import type { BillingState } from './state.ts';

export const T0 = new Date('2030-03-04T10:00:00.000Z');
export const MIN = 60_000;
export const at = (ms: number): string => new Date(T0.getTime() + ms).toISOString();

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

interface ArmedTimer {
  id: number;
  at: Date;
}

export class BillingSim {
  readonly actor: ReturnType<typeof createBillingActor>;
  state: BillingState;
  now: Date;
  readonly ledger: LedgerRecord[] = [];
  readonly holds: HoldRecord[] = [];
  readonly resolved: ResolveRecord[] = [];
  readonly emitted: Emission[] = [];
  readonly timers = new Map<string, ArmedTimer>();
  private nextTimerId = 1;
  private seq = 0;

  constructor(
    config: Partial<BillingConfig> = {},
    readonly key = '42',
    start: Date = T0,
  ) {
    this.actor = createBillingActor(config);
    this.state = this.actor.initial(key);
    this.now = start;
  }

  /** Sends a message at the current time. */
  send<T extends string, P>(def: MessageDef<T, P>, value: P): Emission[] {
    return this.deliver(def.encode(value));
  }

  private deliver(data: Uint8Array): Emission[] {
    const msg = this.actor.decode(data);
    const ctx: HandlerContext = {
      kind: 'billing',
      key: this.key,
      now: this.now,
      msgId: `m-${++this.seq}`,
      subject: `respawn.billing.${this.key}.cmd.x.0`,
      redeliveries: 0,
    };
    const r = this.actor.handle(deepFreeze(structuredClone(this.state)), msg, ctx);
    const checked = this.actor.state.safeParse(r.state);
    if (!checked.success) throw new Error(`invalid state: ${checked.error.message}`);
    this.state = checked.data;
    for (const rec of r.records ?? []) {
      const parsed = BillingRecord.parse(rec);
      if (parsed.kind === 'ledger') {
        if (this.ledger.some((l) => l.key === parsed.key)) {
          throw new Error(`duplicate key value violates unique constraint: ${parsed.key}`);
        }
        this.ledger.push(parsed);
      } else if (parsed.kind === 'resolve') {
        this.resolved.push(parsed);
      } else {
        this.holds.push(parsed);
      }
    }
    for (const op of r.timers ?? []) {
      if ('cancel' in op) this.timers.delete(op.name);
      else this.timers.set(op.name, { id: this.nextTimerId++, at: op.at });
    }
    this.emitted.push(...(r.emit ?? []));
    return [...(r.emit ?? [])];
  }

  /** Moves the clock to `to`, firing every due timer at its due time, in order. */
  advanceTo(to: Date): void {
    for (;;) {
      const due = [...this.timers.entries()]
        .filter(([, t]) => t.at.getTime() <= to.getTime())
        .sort((a, b) => a[1].at.getTime() - b[1].at.getTime() || a[1].id - b[1].id)[0];
      if (due === undefined) break;
      const [name, t] = due;
      this.timers.delete(name);
      if (t.at.getTime() > this.now.getTime()) this.now = t.at;
      this.deliver(
        TimerFired.encode({
          timerId: String(t.id),
          name,
          dueAt: t.at.toISOString(),
          firedAt: this.now.toISOString(),
        }),
      );
    }
    if (to.getTime() > this.now.getTime()) this.now = to;
  }

  advance(ms: number): void {
    this.advanceTo(new Date(this.now.getTime() + ms));
  }

  /** Emissions so far of one message kind (decoded), with their subjects. */
  sent<T extends string, P>(def: MessageDef<T, P>): (P & { type: T; subject: string })[] {
    return this.emitted
      .filter((e) => e.type === def.type)
      .map((e) => ({ ...def.decode(e.data), subject: e.subject }));
  }

  ledgerSum(): number {
    return this.ledger.reduce((s, l) => s + l.amountPaise, 0);
  }

  usageCharged(sessionId?: string): number {
    return this.ledger
      .filter((l) => l.reason === 'usage' && (sessionId === undefined || l.sessionId === sessionId))
      .reduce((s, l) => s - l.amountPaise, 0);
  }
}
