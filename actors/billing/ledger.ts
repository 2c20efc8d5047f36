/**
 * The ledger in PostgreSQL: `billing_ledger` (one row per money movement, integer paise, a
 * globally unique idempotency key) and `billing_hold` (payments recorded for an operator,
 * never credited). Rows come from handler records and are written by `persist` inside the
 * runtime's transaction, together with the state whose cached balance they add up to.
 */
import { Migration } from '@mikro-orm/migrations';
import type { Knex } from 'knex';
import { z } from 'zod';
import { HoldReasons } from '../../contracts/index.ts';
import type { PersistRecord } from '../runtime/index.ts';
import { LedgerReasons } from './state.ts';

const paise = z.number().int().safe();

export const LedgerRecord = z.object({
  kind: z.literal('ledger'),
  /**
   * Globally unique: `topup:<paymentId>`, `refund:<refundId>` (Razorpay's ids),
   * `usage:<playerId>:<sessionId>:<n>`, `adjustment:<playerId>:<adjustmentId>`.
   */
  key: z.string().min(1).max(200),
  amountPaise: paise.refine((v) => v !== 0, 'a ledger entry moves money'),
  reason: z.enum(LedgerReasons),
  balanceAfterPaise: paise,
  sessionId: z.string().optional(),
  topupId: z.string().optional(),
  paymentId: z.string().optional(),
  refundId: z.string().optional(),
  note: z.string().max(500).optional(),
});
export type LedgerRecord = z.infer<typeof LedgerRecord>;

export const HoldRecord = z.object({
  kind: z.literal('hold'),
  /** `hold:<paymentId|refundId>:<reason>`. */
  key: z.string().min(1).max(200),
  reason: z.enum(HoldReasons),
  topupId: z.string(),
  paymentId: z.string().optional(),
  refundId: z.string().optional(),
  amountPaise: paise,
  currency: z.string(),
  expectedAmountPaise: paise.optional(),
  expectedCurrency: z.string().optional(),
});
export type HoldRecord = z.infer<typeof HoldRecord>;

/** A hold settled by billing itself (the early payment was credited when its top-up came). */
export const ResolveRecord = z.object({
  kind: z.literal('resolve'),
  /** The hold's key. */
  key: z.string().min(1).max(200),
  resolution: z.string().min(1).max(500),
});
export type ResolveRecord = z.infer<typeof ResolveRecord>;

export const BillingRecord = z.discriminatedUnion('kind', [
  LedgerRecord,
  HoldRecord,
  ResolveRecord,
]);
export type BillingRecord = z.infer<typeof BillingRecord>;

export class BillingTablesMigration extends Migration {
  override up(): void {
    this.addSql(`create table billing_ledger (
      id bigserial primary key,
      player_id text not null,
      idempotency_key text not null unique,
      amount_paise bigint not null check (amount_paise <> 0),
      reason text not null check (reason in ('topup', 'usage', 'refund', 'adjustment')),
      balance_after_paise bigint not null,
      session_id text, topup_id text, payment_id text, refund_id text, note text,
      msg_id text not null,
      created_at timestamptz not null)`);
    this.addSql(`create index billing_ledger_player on billing_ledger (player_id, id)`);
    // A payment credits one player once, whatever key a buggy handler might invent for it.
    this.addSql(`create unique index billing_ledger_payment on billing_ledger (payment_id)
      where reason = 'topup'`);
    this.addSql(`create table billing_hold (
      id bigserial primary key,
      player_id text not null,
      hold_key text not null unique,
      reason text not null,
      topup_id text not null, payment_id text, refund_id text,
      amount_paise bigint not null, currency text not null,
      expected_amount_paise bigint, expected_currency text,
      msg_id text not null,
      created_at timestamptz not null,
      resolved_at timestamptz, resolution text)`);
    this.addSql(
      `create index billing_hold_open on billing_hold (created_at) where resolved_at is null`,
    );
  }

  override down(): void {
    this.addSql('drop table if exists billing_hold, billing_ledger');
  }
}

export const billingMigrations = [
  { name: 'Migration20261201_billing', class: BillingTablesMigration },
] as const;

/** Writes the handler's records in the runtime's transaction; a unique key violation fails it. */
export async function persistBillingRecords(
  trx: Knex.Transaction,
  rows: readonly PersistRecord[],
): Promise<void> {
  const ledger: Record<string, unknown>[] = [];
  const holds: Record<string, unknown>[] = [];
  const resolved: { key: string; resolution: string; at: string | Date }[] = [];
  for (const row of rows) {
    const r = BillingRecord.parse(row.record);
    if (r.kind === 'ledger') {
      ledger.push({
        player_id: row.key,
        idempotency_key: r.key,
        amount_paise: r.amountPaise,
        reason: r.reason,
        balance_after_paise: r.balanceAfterPaise,
        session_id: r.sessionId ?? null,
        topup_id: r.topupId ?? null,
        payment_id: r.paymentId ?? null,
        refund_id: r.refundId ?? null,
        note: r.note ?? null,
        msg_id: row.msgId,
        created_at: row.at,
      });
    } else if (r.kind === 'resolve') {
      resolved.push({ key: r.key, resolution: r.resolution, at: row.at });
    } else {
      holds.push({
        player_id: row.key,
        hold_key: r.key,
        reason: r.reason,
        topup_id: r.topupId,
        payment_id: r.paymentId ?? null,
        refund_id: r.refundId ?? null,
        amount_paise: r.amountPaise,
        currency: r.currency,
        expected_amount_paise: r.expectedAmountPaise ?? null,
        expected_currency: r.expectedCurrency ?? null,
        msg_id: row.msgId,
        created_at: row.at,
      });
    }
  }
  if (ledger.length > 0) await trx('billing_ledger').insert(ledger);
  if (holds.length > 0) await trx('billing_hold').insert(holds);
  // After the inserts: a hold and its resolution can come in one batch.
  for (const r of resolved) {
    await trx('billing_hold')
      .where({ hold_key: r.key })
      .whereNull('resolved_at')
      .update({ resolved_at: r.at, resolution: r.resolution });
  }
}
