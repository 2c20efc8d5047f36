/**
 * The outcome of a run, in a form two runs can be compared by: the ledger, the session
 * actors' states, the billing actors' states, and the allocator's decisions.
 *
 * Left out, each for a stated reason:
 * - ledger `id` (a global sequence: interleaving across players) and `msg_id` (for a
 *   settlement it is the timer firing's outbox row id, a global sequence too);
 * - billing's `linkId`/`shortUrl` of a top-up: the Razorpay fake makes random link ids, and
 *   the replay's fake is not the recorded run's (credit goes by top-up and payment id, which
 *   come from the recorded webhooks);
 * - the allocator's own state (`usageAt` is the effects runner's wall time); its decisions
 *   (`respawn.alloc.<region>.evt.*`) are compared instead, as a multiset, since decisions for
 *   different sessions may interleave differently.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { Knex } from 'knex';
import { AllocDecided, SessionChanged, Streams } from '../../contracts/index.ts';
import { streamMessages } from '../support/runtime-env.ts';

export interface Outcome {
  ledger: Record<string, unknown>[];
  sessions: Record<string, unknown>;
  billing: Record<string, unknown>;
  decisions: string[];
  /** Every session phase change (`respawn.session.*.evt.*`), as a sorted multiset. */
  sessionEvents: string[];
  /** Why sessions stopped: reason → count. */
  stopReasons: Record<string, number>;
  /** Per session id, the tier of each VM it got (`spot`/`on_demand` by candidate). */
  tiers: Record<string, string[]>;
}

function maskTopups(state: Record<string, unknown>): Record<string, unknown> {
  const topups = state.topups as Record<string, Record<string, unknown>> | undefined;
  if (topups === undefined) return state;
  const masked: Record<string, Record<string, unknown>> = {};
  for (const [id, t] of Object.entries(topups)) {
    const { linkId: _l, shortUrl: _s, ...rest } = t;
    masked[id] = rest;
  }
  return { ...state, topups: masked };
}

export async function outcomeOf(knex: Knex, jsm: JetStreamManager): Promise<Outcome> {
  const ledger = (await knex('billing_ledger')
    .select(
      'player_id',
      'idempotency_key',
      'amount_paise',
      'reason',
      'balance_after_paise',
      'session_id',
      'topup_id',
      'payment_id',
      'refund_id',
      'note',
      'created_at',
    )
    .orderBy([{ column: 'player_id' }, { column: 'id' }])) as Record<string, unknown>[];
  const states = (await knex('rt_state')
    .select('actor', 'key', 'state')
    .whereIn('actor', ['session', 'billing'])
    .orderBy(['actor', 'key'])) as { actor: string; key: string; state: Record<string, unknown> }[];
  const sessions: Record<string, unknown> = {};
  const billing: Record<string, unknown> = {};
  for (const s of states) {
    if (s.actor === 'session') sessions[s.key] = s.state;
    else billing[s.key] = maskTopups(s.state);
  }
  const events = await streamMessages(jsm, Streams.events.name, 'respawn.');
  const decided = events
    .filter((e) => e.subject.startsWith('respawn.alloc.'))
    .map((e) => AllocDecided.decode(e.data));
  const changes = events
    .filter((e) => e.subject.startsWith('respawn.session.'))
    .flatMap((e) => {
      try {
        return [{ player: e.subject.split('.')[2], ...SessionChanged.decode(e.data) }];
      } catch {
        return [];
      }
    });
  const sessionEvents = changes.map((c) => JSON.stringify(c)).sort();
  const stopReasons: Record<string, number> = {};
  for (const c of changes) {
    if (c.phase === 'stopping')
      stopReasons[c.reason ?? '?'] = (stopReasons[c.reason ?? '?'] ?? 0) + 1;
  }
  const decisions = decided
    .map((d) => JSON.stringify([d.sessionId, d.at, d.decision, d.candidate, d.vmName, d.detail]))
    .sort();
  const tiers: Record<string, string[]> = {};
  for (const d of decided) {
    if (d.decision !== 'reserved' || d.sessionId === undefined) continue;
    (tiers[d.sessionId] ??= []).push(d.candidate ?? '?');
  }
  return {
    ledger: ledger.map((r) => ({
      ...r,
      amount_paise: Number(r.amount_paise),
      balance_after_paise: Number(r.balance_after_paise),
      created_at: new Date(r.created_at as string).toISOString(),
    })),
    sessions,
    billing,
    decisions,
    sessionEvents,
    stopReasons,
    tiers,
  };
}
