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
import { IngressSources, ingressSubject, type IngressSource } from '../../contracts/index.ts';
import { RECORDING_FORMAT, type RecordedMessage, type RecordingHeader } from './format.ts';
import { createRng } from './generate-rng.ts';
import {
  b64,
  badRazorpay,
  badTelegram,
  buttonUpdate,
  textUpdate,
  webhook,
  type Player,
} from './generate-wire.ts';
import {
  BAD_DLQ_SUBJECT,
  emptyTally,
  planPlayer,
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
