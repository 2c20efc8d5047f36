/** The invariants a load run checks at the end, from PostgreSQL, JetStream and the ARM fake. */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { PgClient } from '../../harness/index.ts';
import type { ArmFake } from '../../../deploy/fakes/arm/index.ts';

/** Every message of `stream` matching `filter`, with its headers. */
export async function readStream(nc: NatsConnection, stream: string, filter: string) {
  const jsm = await jetstreamManager(nc);
  const ci = await jsm.consumers.add(stream, {
    filter_subject: filter,
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
    inactive_threshold: nanos(60_000),
  });
  const out: { subject: string; data: Uint8Array; headers: Record<string, string> }[] = [];
  if (ci.num_pending === 0) return out;
  const c = await jetstream(nc).consumers.get(stream, ci.name);
  // One pull is capped (by count and by bytes), so a long stream takes many: keep pulling
  // until the consumer has nothing pending. A partial read would check only part of the day.
  for (let done = false; !done; ) {
    let got = 0;
    const iter = await c.fetch({ max_messages: 10_000, expires: 5_000 });
    for await (const m of iter) {
      got++;
      const headers: Record<string, string> = {};
      if (m.headers !== undefined) for (const k of m.headers.keys()) headers[k] = m.headers.get(k);
      out.push({ subject: m.subject, data: m.data, headers });
      if ((m.info.pending ?? 0) === 0) {
        done = true;
        break;
      }
    }
    if (got === 0) done = true;
  }
  if (out.length < ci.num_pending) {
    throw new Error(`read ${out.length} of ${ci.num_pending} messages of ${stream} (${filter})`);
  }
  return out;
}

interface MeterCmd {
  type: string;
  sessionId: string;
  at: string;
  pricePerHourPaise?: number;
}

/** What a session's meter commands say is due: Σ whole seconds × price / 3600, rounded down. */
export function dueFromCommands(cmds: readonly MeterCmd[]): number | undefined {
  let units = 0;
  let since: number | undefined;
  let price = 0;
  let closed = false;
  for (const c of cmds) {
    const t = Date.parse(c.at);
    const stopAt = (): void => {
      if (since !== undefined) units += Math.max(0, Math.floor((t - since) / 1000)) * price;
      since = undefined;
    };
    if (c.type === 'billing.meter_open.v1' || c.type === 'billing.meter_resume.v1') {
      if (since === undefined) {
        since = t;
        price = c.pricePerHourPaise ?? price;
      }
    } else if (c.type === 'billing.meter_pause.v1') stopAt();
    else if (c.type === 'billing.meter_close.v1') {
      stopAt();
      closed = true;
    }
  }
  return closed ? Math.floor(units / 3600) : undefined;
}

export interface CheckInput {
  nc: NatsConnection;
  pg: PgClient;
  arm: ArmFake;
  capturedPayments: ReadonlySet<string>;
  badMsgIds: ReadonlySet<string>;
  duplicateVmSessions: number;
  quotaOverruns: number;
}

export async function checkInvariants(i: CheckInput) {
  const detail: Record<string, string> = {};
  const inv: Record<string, boolean> = {};
  inv.no_duplicate_vm_for_a_session = i.duplicateVmSessions === 0;
  detail.no_duplicate_vm_for_a_session = `${i.duplicateVmSessions} sessions with two live VMs`;
  inv.no_quota_overrun = i.quotaOverruns === 0;
  detail.no_quota_overrun = `${i.quotaOverruns} samples over a quota limit`;

  const credits = (
    await i.pg.query(
      `select payment_id, count(*)::int as n from billing_ledger where reason = 'topup' group by payment_id`,
    )
  ).rows as { payment_id: string; n: number }[];
  const byPayment = new Map(credits.map((r) => [r.payment_id, r.n]));
  const notOnce = [...i.capturedPayments].filter((p) => byPayment.get(p) !== 1);
  const stray = credits.filter((r) => !i.capturedPayments.has(r.payment_id));
  inv.every_captured_payment_credited_once = notOnce.length === 0 && stray.length === 0;
  // Why: the open holds of those payments, by reason.
  const heldFor = (
    await i.pg.query(
      `select reason, count(*)::int as n from billing_hold
        where payment_id = any($1) and resolved_at is null group by reason`,
      [notOnce],
    )
  ).rows as { reason: string; n: number }[];
  const why = heldFor.map((r) => `${r.reason} ${r.n}`).join(', ');
  detail.every_captured_payment_credited_once = `${i.capturedPayments.size} captured, ${notOnce.length} not credited exactly once${why === '' ? '' : ` (held: ${why})`}, ${stray.length} credits of unknown payments`;

  const states = (await i.pg.query(`select key, state from rt_state where actor = 'billing'`))
    .rows as {
    key: string;
    state: { balancePaise: number };
  }[];
  const sums = new Map(
    (
      (
        await i.pg.query(
          `select player_id, sum(amount_paise)::bigint as s from billing_ledger group by player_id`,
        )
      ).rows as { player_id: string; s: string }[]
    ).map((r) => [r.player_id, Number(r.s)]),
  );
  const wrongBalance = states.filter((s) => s.state.balancePaise !== (sums.get(s.key) ?? 0));
  inv.balance_equals_sum_of_entries = wrongBalance.length === 0;
  detail.balance_equals_sum_of_entries = `${states.length} wallets, ${wrongBalance.length} differ`;

  // Charged = metered: per closed session, −Σ usage rows against what its meter commands say.
  const meterMsgs = await readStream(i.nc, 'RESPAWN_BILLING_CMD', 'respawn.billing.*.cmd.*.*');
  const bySession = new Map<string, MeterCmd[]>();
  for (const m of meterMsgs) {
    if (!/\.cmd\.meter_/.test(m.subject)) continue;
    const c = JSON.parse(Buffer.from(m.data).toString('utf8')) as MeterCmd;
    bySession.set(c.sessionId, [...(bySession.get(c.sessionId) ?? []), c]);
  }
  const charged = new Map(
    (
      (
        await i.pg.query(
          `select session_id, -sum(amount_paise)::bigint as c from billing_ledger where reason = 'usage' group by session_id`,
        )
      ).rows as { session_id: string; c: string }[]
    ).map((r) => [r.session_id, Number(r.c)]),
  );
  let closedSessions = 0;
  let meterSeconds = 0;
  const mismatched: string[] = [];
  for (const [sessionId, cmds] of bySession) {
    const due = dueFromCommands(cmds);
    if (due === undefined) continue;
    closedSessions++;
    if ((charged.get(sessionId) ?? 0) !== due)
      mismatched.push(`${sessionId}: charged ${charged.get(sessionId) ?? 0}, due ${due}`);
  }
  for (const cmds of bySession.values()) {
    let since: number | undefined;
    for (const c of cmds) {
      const t = Date.parse(c.at);
      if (c.type.endsWith('open.v1') || c.type.endsWith('resume.v1')) since ??= t;
      else if (since !== undefined) {
        meterSeconds += Math.floor((t - since) / 1000);
        since = undefined;
      }
    }
  }
  inv.charged_seconds_equal_metered_seconds = mismatched.length === 0;
  detail.charged_seconds_equal_metered_seconds = `${closedSessions} closed meters, ${mismatched.length} differ${mismatched.length > 0 ? ` (e.g. ${mismatched.slice(0, 3).join('; ')})` : ''}`;

  // No orphan VM: every VM the fake still has belongs to a session that is not idle on it.
  const sessions = (await i.pg.query(`select key, state from rt_state where actor = 'session'`))
    .rows as {
    key: string;
    state: { phase: string; vmName?: string };
  }[];
  const live = new Set(sessions.filter((s) => s.state.phase !== 'idle').map((s) => s.state.vmName));
  const vms = i.arm.state
    .vms()
    .filter((v) => v.tags.purpose === 'respawn-session' && v.powerState !== 'deallocated');
  const orphans = vms.filter((v) => !live.has(v.name));
  inv.no_orphan_vm = orphans.length === 0;
  detail.no_orphan_vm = `${vms.length} VMs left, ${orphans.length} without a live session; ${sessions.filter((s) => s.state.phase !== 'idle').length} sessions not idle`;

  const dlq = await readStream(i.nc, 'RESPAWN_DLQ', 'respawn.dlq.>');
  const dead = new Set(dlq.map((m) => m.headers['Respawn-Dlq-Msg-Id'] ?? m.subject));
  const unexpected = [...dead].filter((d) => !i.badMsgIds.has(d));
  const missing = [...i.badMsgIds].filter((b) => !dead.has(b));
  inv.dead_letters_only_for_injected_bad_inputs = unexpected.length === 0 && missing.length === 0;
  const codes: Record<string, number> = {};
  for (const m of dlq)
    if (!i.badMsgIds.has(m.headers['Respawn-Dlq-Msg-Id'] ?? ''))
      codes[m.subject] = (codes[m.subject] ?? 0) + 1;
  detail.dead_letters_only_for_injected_bad_inputs = `${dlq.length} dead letters, ${i.badMsgIds.size} injected, ${unexpected.length} unexpected ${JSON.stringify(codes)}, ${missing.length} injected not dead-lettered`;
  return { invariants: inv, detail, meterSeconds, closedSessions };
}
