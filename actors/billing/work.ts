/**
 * The handler's scratchpad: a private copy of the state plus what the message will emit,
 * which timers it sets and which ledger rows it writes. Every money movement goes through
 * `post`, which changes the cached balance and adds the ledger record together.
 */
import {
  ActorKinds,
  BillingEvents,
  BillingPaymentHeld,
  TelegramSend,
  evtSubject,
  outTelegramSubject,
  type MessageOf,
  rupees,
} from '../../contracts/index.ts';
import {
  emit,
  type Emission,
  type HandlerContext,
  type HandlerResult,
  type TimerOp,
} from '../runtime/index.ts';
import type { BillingConfig } from './config.ts';
import type { BillingRecord, HoldRecord, LedgerRecord } from './ledger.ts';
import { LIMITS, type BillingState } from './state.ts';

type TelegramMessage = Omit<MessageOf<typeof TelegramSend>, 'type' | 'chatId'>;

export class Work {
  readonly s: BillingState;
  readonly emitted: Emission[] = [];
  readonly records: BillingRecord[] = [];
  private readonly timerOps = new Map<string, TimerOp>();

  constructor(
    state: BillingState,
    readonly ctx: HandlerContext,
    readonly cfg: BillingConfig,
  ) {
    this.s = structuredClone(state);
  }

  get now(): Date {
    return this.ctx.now;
  }

  get player(): string {
    return this.ctx.key;
  }

  /** Changes the balance and writes the ledger entry that justifies it. */
  post(entry: Omit<LedgerRecord, 'kind' | 'balanceAfterPaise'> & { label: string }): void {
    const { label, ...rest } = entry;
    this.s.balancePaise += entry.amountPaise;
    this.records.push({ kind: 'ledger', ...rest, balanceAfterPaise: this.s.balancePaise });
    const last = this.s.history.at(-1);
    if (
      entry.reason === 'usage' &&
      last !== undefined &&
      last.reason === 'usage' &&
      last.sessionId === entry.sessionId
    ) {
      last.amountPaise += entry.amountPaise;
      last.balanceAfterPaise = this.s.balancePaise;
      last.label = mergedLabel(last.label, label);
      last.at = this.now.toISOString();
    } else {
      this.s.history.push({
        at: this.now.toISOString(),
        reason: entry.reason,
        amountPaise: entry.amountPaise,
        balanceAfterPaise: this.s.balancePaise,
        label,
        ...(entry.sessionId === undefined ? {} : { sessionId: entry.sessionId }),
      });
      this.s.history = this.s.history.slice(-LIMITS.history);
    }
  }

  /**
   * Records a payment for an operator (once per key) and tells operators on the event stream;
   * false when it was held already.
   */
  hold(h: Omit<HoldRecord, 'kind' | 'key'> & { id: string }): boolean {
    const { id, ...rest } = h;
    const key = `hold:${id}:${h.reason}`;
    if (this.s.held.includes(key)) return false;
    this.s.held.push(key);
    this.records.push({ kind: 'hold', key, ...rest });
    this.emitted.push(
      emit(
        BillingPaymentHeld,
        evtSubject(ActorKinds.billing, this.player, BillingEvents.paymentHeld),
        {
          playerId: this.player,
          reason: h.reason,
          topupId: h.topupId,
          amountPaise: h.amountPaise,
          currency: h.currency,
          ...(h.paymentId === undefined ? {} : { paymentId: h.paymentId }),
          ...(h.refundId === undefined ? {} : { refundId: h.refundId }),
          ...(h.expectedAmountPaise === undefined
            ? {}
            : { expectedAmountPaise: h.expectedAmountPaise }),
          ...(h.expectedCurrency === undefined ? {} : { expectedCurrency: h.expectedCurrency }),
        },
      ),
    );
    return true;
  }

  /** Marks a hold of this player settled (in billing_hold, for operators). */
  resolveHold(key: string, resolution: string): void {
    this.records.push({ kind: 'resolve', key, resolution });
  }

  /** Sends to the player's chat, when billing knows one. */
  tell(message: TelegramMessage, chatId: string | undefined = this.s.chatId): void {
    if (chatId === undefined) return;
    this.emitted.push(emit(TelegramSend, outTelegramSubject(chatId), { ...message, chatId }));
  }

  /** The top-up presets as inline buttons the bot router understands (`topup:<paise>`). */
  topupButtons(): { text: string; data: string }[][] {
    const buttons = this.cfg.topupPresetsPaise.map((p) => ({
      text: rupees(p),
      data: `topup:${p}`,
    }));
    const rows: { text: string; data: string }[][] = [];
    for (let i = 0; i < buttons.length; i += 3) rows.push(buttons.slice(i, i + 3));
    return rows;
  }

  send(e: Emission): void {
    this.emitted.push(e);
  }

  /** Sets a durable timer (a no-op when it is already set for that time). */
  arm(name: string, at: Date): void {
    const when = at.toISOString();
    if (this.s.timers[name] === when) return;
    this.s.timers[name] = when;
    this.timerOps.set(name, { name, at });
  }

  disarm(name: string): void {
    if (!(name in this.s.timers)) return;
    delete this.s.timers[name];
    this.timerOps.set(name, { name, cancel: true });
  }

  /** The runtime removed a timer that fired; forget it without cancelling anything. */
  fired(name: string): void {
    delete this.s.timers[name];
    this.timerOps.delete(name);
  }

  result(): HandlerResult<BillingState> {
    return {
      state: this.s,
      ...(this.emitted.length > 0 ? { emit: this.emitted } : {}),
      ...(this.timerOps.size > 0 ? { timers: [...this.timerOps.values()] } : {}),
      ...(this.records.length > 0 ? { records: this.records } : {}),
    };
  }
}

/**
 * A session's usage lines are one history line; one that changed tier (an eviction resumed
 * On-Demand) says both: "Spot + On-Demand session 42-1", not the first tier's name alone.
 */
export function mergedLabel(was: string, next: string): string {
  const SESSION = ' session ';
  const a = was.indexOf(SESSION);
  const b = next.indexOf(SESSION);
  if (was === next || a < 0 || b < 0 || was.slice(a) !== next.slice(b)) return was;
  const tiers = was.slice(0, a).split(' + ');
  const tier = next.slice(0, b);
  return tiers.includes(tier) ? was : `${[...tiers, tier].join(' + ')}${was.slice(a)}`;
}
