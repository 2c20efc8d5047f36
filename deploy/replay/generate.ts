/**
 * The synthetic workload generator: a `respawn-recording/1` file (deploy/replay/format.ts) of N
 * players over a simulated period, as the gateway would have stored it on RESPAWN_IN.
 *
 * - Telegram updates on `respawn.in.telegram`, Nats-Msg-Id `tg-<update_id>`, update ids rising
 *   in time order; Razorpay webhooks on `respawn.in.razorpay`, Nats-Msg-Id `rzp-<event id>`,
 *   carrying the notes (`player_id`, `topup_id`) the payment link of that top-up had: billing's
 *   top-up id is `tg-<update_id>` of the amount button, so the generator knows it.
 * - No agent reports: VM names and readiness exist only at run time. A load run gets them from
 *   the agent simulator answering the VMs the ARM fake creates, and evictions from the ARM
 *   fake's Preempt support at `meta.evictionsPerSpotVmMonth` (docs/load.md).
 * - Seeded: the same options give a byte-identical file (no clock, no Math.random).
 * - `meta.bad` lists every injected bad input by Nats-Msg-Id with the dead-letter subject it
 *   must end on; nothing else the generator writes is dead-lettered.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { referenceIdFor } from '../../actors/billing/index.ts';
import { IngressSources, ingressSubject, type IngressSource } from '../../contracts/index.ts';
import { RECORDING_FORMAT, type RecordedMessage, type RecordingHeader } from './format.ts';
import { createRng, type Rng } from './generate-rng.ts';
import {
  BAD_DLQ_SUBJECT,
  emptyTally,
  planPlayer,
  type Act,
  type BadKind,
  type ModelOptions,
  type Planned,
  type Tally,
} from './generate-model.ts';

export { BadKinds, BAD_DLQ_SUBJECT, NoiseKinds, type BadKind } from './generate-model.ts';

export const GENERATOR = 'respawn-synthetic/1';

export interface GenerateOptions extends Partial<Omit<ModelOptions, 'fromMs' | 'toMs'>> {
  players?: number;
  hours?: number;
  /** Start of the period (ISO-8601). Default: midnight IST of 21 November 2026. */
  from?: string;
  seed?: number;
  /** Telegram user ids are playerIdBase + 0 … players − 1 (the player id is the user id). */
  playerIdBase?: number;
  updateIdBase?: number;
  /** Spot evictions per VM per month the load run should inject (operators report 2–3). */
  evictionsPerSpotVmMonth?: number;
}

export const DEFAULT_FROM = '2026-11-20T18:30:00.000Z';

export const defaultModel: Omit<ModelOptions, 'fromMs' | 'toMs'> = {
  activeShare: 0.65,
  sessionMedianMinutes: 70,
  doubleClickRate: 0.08,
  abandonedStartRate: 0.05,
  idlePlayerRate: 0.08,
  insufficientRate: 0.1,
  abandonedTopupRate: 0.06,
  paymentFailedRate: 0.04,
  webhookRetryRate: 0.1,
  badInputRate: 0.01,
  noiseRate: 0.03,
  topupPresetsPaise: [10_000, 25_000, 50_000, 100_000],
  spotPaisePerHour: 3_000,
  minStartMinutes: 15,
  tailMinutes: 30,
};

export interface BadInput {
  msgId: string;
  kind: BadKind;
  dlqSubject: string;
}

export interface Generated {
  header: RecordingHeader;
  /** Every message line, in file order (without the header). */
  messages: RecordedMessage[];
  tally: Tally;
  bad: BadInput[];
}

const BOT = { id: 1000001, is_bot: true, first_name: 'Respawn', username: 'respawn_bot' };

interface Player {
  id: number;
  name: string;
  messageId: number;
}

function resolved(o: GenerateOptions) {
  const players = o.players ?? 10_000;
  const hours = o.hours ?? 24;
  const from = o.from ?? DEFAULT_FROM;
  const fromMs = Date.parse(from);
  if (!Number.isInteger(players) || players < 1) {
    throw new RangeError(`players must be a positive integer, got ${players}`);
  }
  if (!(hours >= 1)) throw new RangeError(`hours must be at least 1, got ${hours}`);
  if (Number.isNaN(fromMs)) throw new RangeError(`from must be an ISO-8601 time, got ${from}`);
  const model: ModelOptions = {
    ...defaultModel,
    ...Object.fromEntries(
      Object.entries(o).filter(([k, v]) => k in defaultModel && v !== undefined),
    ),
    fromMs,
    toMs: fromMs + Math.round(hours * 3_600_000),
  };
  return {
    players,
    hours,
    seed: o.seed ?? 1,
    playerIdBase: o.playerIdBase ?? 7_100_000_000,
    updateIdBase: o.updateIdBase ?? 800_000_000,
    evictionsPerSpotVmMonth: o.evictionsPerSpotVmMonth ?? 2.5,
    model,
  };
}

const unix = (ms: number): number => Math.floor(ms / 1000);
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

function user(p: Player) {
  return { id: p.id, is_bot: false, first_name: p.name, language_code: 'en' };
}

function privateChat(p: Player) {
  return { id: p.id, first_name: p.name, type: 'private' };
}

function textUpdate(updateId: number, p: Player, at: number, text: string, group: boolean): string {
  const command = /^\/[A-Za-z0-9_]+/.exec(text)?.[0];
  return JSON.stringify({
    update_id: updateId,
    message: {
      message_id: ++p.messageId,
      from: user(p),
      chat: group
        ? { id: -1_001_000_000_000 - p.id, title: 'Respawn gamers', type: 'group' }
        : privateChat(p),
      date: unix(at),
      text,
      ...(command === undefined
        ? {}
        : { entities: [{ offset: 0, length: command.length, type: 'bot_command' }] }),
    },
  });
}

function buttonUpdate(updateId: number, p: Player, at: number, data: string, rng: Rng): string {
  return JSON.stringify({
    update_id: updateId,
    callback_query: {
      id: `${p.id}${rng.int(100_000, 999_999)}`,
      from: user(p),
      message: {
        message_id: Math.max(1, p.messageId - rng.int(0, 2)),
        from: BOT,
        chat: privateChat(p),
        date: unix(at) - rng.int(5, 600),
        text: 'Respawn',
      },
      chat_instance: String(-(p.id * 7 + 13)),
      data,
    },
  });
}

function badTelegram(updateId: number, p: Player, at: number): string {
  // A message without chat and message_id: the gateway reads only update_id and from.
  return JSON.stringify({
    update_id: updateId,
    message: { from: user(p), date: unix(at), text: '/play' },
  });
}

function paymentEntity(
  pay: { paymentId: string; orderId: string; amountPaise: number | string },
  status: 'captured' | 'failed',
  notes: Record<string, string> | [],
  at: number,
) {
  const failed = status === 'failed';
  return {
    id: pay.paymentId,
    entity: 'payment',
    amount: pay.amountPaise,
    currency: 'INR',
    status,
    order_id: pay.orderId,
    invoice_id: null,
    international: false,
    method: 'upi',
    amount_refunded: 0,
    refund_status: null,
    captured: !failed,
    description: 'Respawn wallet top-up',
    vpa: 'player@upi',
    email: 'void@razorpay.com',
    contact: '+919000090000',
    notes,
    fee: failed ? 0 : Math.round(Number(pay.amountPaise) * 0.02),
    tax: failed ? 0 : Math.round(Number(pay.amountPaise) * 0.0036),
    error_code: failed ? 'BAD_REQUEST_ERROR' : null,
    error_description: failed ? 'Payment was declined by the bank' : null,
    created_at: unix(at),
  };
}

function orderEntity(
  orderId: string,
  amount: number,
  paid: boolean,
  notes: Record<string, string> | [],
  at: number,
) {
  return {
    id: orderId,
    entity: 'order',
    amount,
    amount_paid: paid ? amount : 0,
    amount_due: paid ? 0 : amount,
    currency: 'INR',
    receipt: null,
    status: paid ? 'paid' : 'attempted',
    attempts: 1,
    notes,
    created_at: unix(at) - 60,
  };
}

function envelope(event: string, payload: Record<string, unknown>, at: number): string {
  return JSON.stringify({
    entity: 'event',
    account_id: 'acc_RespawnSynth01',
    event,
    contains: Object.keys(payload),
    payload,
    created_at: unix(at),
  });
}

function webhook(act: Extract<Act, { kind: 'webhook' }>, p: Player, at: number): string {
  const updateId = act.topup.updateId;
  if (updateId === undefined) throw new Error('a webhook planned before its top-up button');
  const topupId = `tg-${updateId}`;
  const playerId = String(p.id);
  const notes = { player_id: playerId, topup_id: topupId };
  const { payment } = act;
  if (act.event === 'payment.failed') {
    return envelope(
      act.event,
      { payment: { entity: paymentEntity(payment, 'failed', notes, at) } },
      at,
    );
  }
  const pay = { entity: paymentEntity(payment, 'captured', notes, at) };
  const order = { entity: orderEntity(payment.orderId, payment.amountPaise, true, notes, at) };
  if (act.event === 'payment.captured') return envelope(act.event, { payment: pay, order }, at);
  const link = {
    id: payment.linkId,
    entity: 'payment_link',
    amount: payment.amountPaise,
    amount_paid: payment.amountPaise,
    currency: 'INR',
    status: 'paid',
    reference_id: referenceIdFor(playerId, topupId),
    description: 'Respawn wallet top-up',
    notes,
    order_id: payment.orderId,
    created_at: unix(at) - 120,
  };
  return envelope(act.event, { payment_link: { entity: link }, order, payment: pay }, at);
}

function badRazorpay(kind: BadKind, p: Player, at: number, rng: Rng): string {
  const pay = {
    paymentId: `pay_${rng.alnum(14)}`,
    orderId: `order_${rng.alnum(14)}`,
    amountPaise: 25_000,
  };
  switch (kind) {
    case 'razorpay_unknown_event':
      return envelope(
        'order.paid',
        { order: { entity: orderEntity(pay.orderId, 25_000, true, [], at) } },
        at,
      );
    case 'razorpay_no_notes':
      return envelope(
        'payment.captured',
        { payment: { entity: paymentEntity(pay, 'captured', [], at) } },
        at,
      );
    default:
      return envelope(
        'payment.captured',
        {
          payment: {
            entity: paymentEntity(
              { ...pay, amountPaise: '25000' },
              'captured',
              { player_id: String(p.id), topup_id: 'tg-0' },
              at,
            ),
          },
        },
        at,
      );
  }
}

/** Builds the whole recording in memory (what generateRecording writes). */
export function generate(opts: GenerateOptions = {}): Generated {
  const r = resolved(opts);
  const root = createRng(r.seed);
  const tally = emptyTally();
  const players: Player[] = [];
  const plan: Planned[] = [];
  for (let i = 0; i < r.players; i++) {
    const id = r.playerIdBase + i;
    players.push({ id, name: `Player${i + 1}`, messageId: 0 });
    for (const step of planPlayer(root.fork(i), i, String(id), r.model, tally)) plan.push(step);
  }
  plan.sort((a, b) => a.at - b.at || a.playerIndex - b.playerIndex || a.order - b.order);
  const bytesRng = root.fork('bytes');
  const messages: RecordedMessage[] = [];
  const bad: BadInput[] = [];
  tally.bad = {
    telegram_no_chat: 0,
    razorpay_unknown_event: 0,
    razorpay_no_notes: 0,
    razorpay_bad_amount: 0,
  };
  let updateId = r.updateIdBase;
  for (const step of plan) {
    if (step.at < r.model.fromMs || step.at >= r.model.toMs) continue;
    const p = players[step.playerIndex];
    if (p === undefined) continue;
    const act = step.act;
    let source: IngressSource;
    let body: string;
    let msgId: string;
    if (act.kind === 'webhook') {
      source = IngressSources.razorpay;
      msgId = `rzp-${act.eventId}`;
      body =
        act.retryOf?.kind === 'webhook' && act.retryOf.body !== undefined
          ? act.retryOf.body
          : webhook(act, p, step.at);
      act.body = body;
    } else if (act.kind === 'bad' && act.bad !== 'telegram_no_chat') {
      source = IngressSources.razorpay;
      msgId = `rzp-evt_${bytesRng.alnum(14)}`;
      body = badRazorpay(act.bad, p, step.at, bytesRng);
    } else {
      source = IngressSources.telegram;
      updateId++;
      msgId = `tg-${updateId}`;
      if (act.kind === 'bad') body = badTelegram(updateId, p, step.at);
      else if (act.kind === 'text')
        body = textUpdate(updateId, p, step.at, act.text, act.group === true);
      else {
        if (act.topup !== undefined) act.topup.updateId = updateId;
        body = buttonUpdate(updateId, p, step.at, act.data, bytesRng);
      }
    }
    if (act.kind === 'bad') {
      tally.bad[act.bad]++;
      bad.push({ msgId, kind: act.bad, dlqSubject: BAD_DLQ_SUBJECT[act.bad] });
    }
    messages.push({
      seq: messages.length + 1,
      time: new Date(step.at).toISOString(),
      source,
      subject: ingressSubject(source),
      headers: { 'Nats-Msg-Id': [msgId] },
      data: b64(body),
    });
  }
  const bySource: Record<string, number> = {};
  for (const m of messages) bySource[m.source] = (bySource[m.source] ?? 0) + 1;
  const badBySubject: Record<string, number> = {};
  for (const b of bad) badBySubject[b.dlqSubject] = (badBySubject[b.dlqSubject] ?? 0) + 1;
  const fromIso = new Date(r.model.fromMs).toISOString();
  const { idlePlayers, ...counts } = tally;
  const header: RecordingHeader = {
    format: RECORDING_FORMAT,
    source: 'generator',
    // Not the wall clock: the same options must give the same bytes.
    createdAt: fromIso,
    from: fromIso,
    to: new Date(r.model.toMs).toISOString(),
    meta: {
      generator: GENERATOR,
      seed: r.seed,
      players: r.players,
      hours: r.hours,
      playerIdBase: r.playerIdBase,
      updateIdBase: r.updateIdBase,
      evictionsPerSpotVmMonth: r.evictionsPerSpotVmMonth,
      model: { ...r.model, fromMs: undefined, toMs: undefined },
      messages: messages.length,
      bySource,
      counts,
      idlePlayers,
      bad: { count: bad.length, bySubject: badBySubject, inputs: bad },
    },
  };
  return { header, messages, tally, bad };
}

export interface GenerateResult {
  path: string;
  header: RecordingHeader;
  count: number;
  tally: Tally;
  bad: BadInput[];
  bytes: number;
}

/** Writes the recording to `path` (JSON lines: the header, then one message per line). */
export async function generateRecording(
  opts: GenerateOptions & { path: string },
): Promise<GenerateResult> {
  const g = generate(opts);
  const out = createWriteStream(opts.path, { encoding: 'utf8' });
  let bytes = 0;
  const write = async (chunk: string): Promise<void> => {
    bytes += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  };
  await write(`${JSON.stringify(g.header)}\n`);
  for (let i = 0; i < g.messages.length; i += 1000) {
    await write(
      g.messages
        .slice(i, i + 1000)
        .map((m) => `${JSON.stringify(m)}\n`)
        .join(''),
    );
  }
  out.end();
  await once(out, 'finish');
  return {
    path: opts.path,
    header: g.header,
    count: g.messages.length,
    tally: g.tally,
    bad: g.bad,
    bytes,
  };
}
