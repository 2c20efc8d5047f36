/**
 * How synthetic players behave, as a plan of timed actions (no bytes yet; generate.ts turns
 * the plan into ingress messages). One player at a time, from their own seeded stream, so a
 * player's behaviour does not depend on how many others there are.
 *
 * Times are epoch milliseconds. Session start times follow an Indian evening peak (IST);
 * lengths are log-normal around 70 minutes.
 */
import type { Rng } from './generate-rng.ts';

export interface ModelOptions {
  fromMs: number;
  toMs: number;
  /** Chance that a player plays at all in a whole day (scaled down for shorter windows). */
  activeShare: number;
  sessionMedianMinutes: number;
  doubleClickRate: number;
  abandonedStartRate: number;
  /** Share of players who start sessions and never give input (idle timeout stops them). */
  idlePlayerRate: number;
  /** Chance that a player short of credit presses Play before topping up. */
  insufficientRate: number;
  /** Chance that a top-up link is never paid. */
  abandonedTopupRate: number;
  paymentFailedRate: number;
  webhookRetryRate: number;
  /** Bad inputs per session (spread over the kinds in BadKinds). */
  badInputRate: number;
  /** Harmless nonsense per session (unknown commands, free text, group chats): no dead letter. */
  noiseRate: number;
  topupPresetsPaise: readonly number[];
  spotPaisePerHour: number;
  minStartMinutes: number;
  /** Minutes after a session's planned end kept free so idle timeouts land inside the window. */
  tailMinutes: number;
}

/** Injected bad inputs: each one passes the gateway and is dead-lettered by an ingress router. */
export const BadKinds = {
  /** A Telegram update whose message lacks chat and message_id → respawn.dlq.telegram.invalid_payload */
  telegramNoChat: 'telegram_no_chat',
  /** A signed Razorpay event Respawn does not handle (order.paid) → respawn.dlq.razorpay.unknown_type */
  razorpayUnknownEvent: 'razorpay_unknown_event',
  /** payment.captured without Respawn's notes (paid outside the bot) → respawn.dlq.razorpay.unroutable */
  razorpayNoNotes: 'razorpay_no_notes',
  /** payment.captured whose amount is a string → respawn.dlq.razorpay.invalid_payload */
  razorpayBadAmount: 'razorpay_bad_amount',
} as const;
export type BadKind = (typeof BadKinds)[keyof typeof BadKinds];

export const BAD_DLQ_SUBJECT: Record<BadKind, string> = {
  telegram_no_chat: 'respawn.dlq.telegram.invalid_payload',
  razorpay_unknown_event: 'respawn.dlq.razorpay.unknown_type',
  razorpay_no_notes: 'respawn.dlq.razorpay.unroutable',
  razorpay_bad_amount: 'respawn.dlq.razorpay.invalid_payload',
};

export const NoiseKinds = {
  unknownCommand: 'unknown_command',
  freeText: 'free_text',
  groupChat: 'group_chat',
  topupOutOfRange: 'topup_out_of_range',
} as const;
export type NoiseKind = (typeof NoiseKinds)[keyof typeof NoiseKinds];

/** A top-up button press; its update id (hence billing's top-up id) is known once sorted. */
export interface TopupRef {
  updateId?: number;
}

export interface PaymentRef {
  paymentId: string;
  orderId: string;
  linkId: string;
  amountPaise: number;
}

export type Act =
  | { kind: 'text'; text: string; group?: boolean }
  | { kind: 'button'; data: string; topup?: TopupRef }
  | { kind: 'bad'; bad: BadKind }
  | {
      kind: 'webhook';
      event: 'payment.captured' | 'payment_link.paid' | 'payment.failed';
      eventId: string;
      topup: TopupRef;
      payment: PaymentRef;
      /** Set for a redelivery: the same event id and body as an earlier delivery. */
      retryOf?: Act;
      /** Filled when the first delivery is written, so a retry repeats it byte for byte. */
      body?: string;
    };

export interface Planned {
  at: number;
  playerIndex: number;
  /** Order within the player's plan (ties in time keep the player's order). */
  order: number;
  act: Act;
}

export interface Tally {
  activePlayers: number;
  idlePlayers: string[];
  sessions: number;
  plays: number;
  doubleClicks: number;
  abandonedStarts: number;
  idleSessions: number;
  insufficientStarts: number;
  topups: number;
  abandonedTopups: number;
  paymentsCaptured: number;
  paymentsFailed: number;
  webhookRetries: number;
  statusChecks: number;
  bad: Record<BadKind, number>;
  noise: Record<NoiseKind, number>;
}

export function emptyTally(): Tally {
  return {
    activePlayers: 0,
    idlePlayers: [],
    sessions: 0,
    plays: 0,
    doubleClicks: 0,
    abandonedStarts: 0,
    idleSessions: 0,
    insufficientStarts: 0,
    topups: 0,
    abandonedTopups: 0,
    paymentsCaptured: 0,
    paymentsFailed: 0,
    webhookRetries: 0,
    statusChecks: 0,
    bad: {
      telegram_no_chat: 0,
      razorpay_unknown_event: 0,
      razorpay_no_notes: 0,
      razorpay_bad_amount: 0,
    },
    noise: { unknown_command: 0, free_text: 0, group_chat: 0, topup_out_of_range: 0 },
  };
}

/** Relative weight of a session starting in each hour of the day, IST (evening peak). */
export const IST_HOUR_WEIGHTS: readonly number[] = [
  3, 1.5, 0.8, 0.5, 0.4, 0.5, 1, 1.5, 2, 2, 2.5, 3, 3.5, 3.5, 3.5, 4, 4.5, 5.5, 7, 9, 10, 10, 8,
  5.5,
];
const IST_OFFSET_MS = 330 * 60_000;
const HOUR = 3_600_000;
const MIN = 60_000;
const SEC = 1_000;

export function istHour(ms: number): number {
  return new Date(ms + IST_OFFSET_MS).getUTCHours();
}

/** Share of a day's session starts that fall in [from, to). */
export function windowShare(fromMs: number, toMs: number): number {
  const day = IST_HOUR_WEIGHTS.reduce((s, w) => s + w, 0);
  let sum = 0;
  for (let t = fromMs; t < toMs; t += MIN) sum += (IST_HOUR_WEIGHTS[istHour(t)] ?? 0) / 60;
  return sum / day;
}

const MAX_WEIGHT = Math.max(...IST_HOUR_WEIGHTS);

function startTime(rng: Rng, from: number, to: number): number {
  for (let i = 0; i < 1000; i++) {
    const t = from + Math.floor(rng.next() * (to - from));
    if (rng.next() * MAX_WEIGHT < (IST_HOUR_WEIGHTS[istHour(t)] ?? 0)) return t;
  }
  return from;
}

/** The plan of one player for the window. */
export function planPlayer(
  rng: Rng,
  playerIndex: number,
  playerId: string,
  o: ModelOptions,
  tally: Tally,
): Planned[] {
  const out: Planned[] = [];
  const add = (at: number, act: Act): void => {
    out.push({ at, playerIndex, order: out.length, act });
  };
  const share = windowShare(o.fromMs, o.toMs);
  if (!rng.chance(Math.min(1, o.activeShare * share))) {
    return out;
  }
  tally.activePlayers++;
  const idle = rng.chance(o.idlePlayerRate);
  if (idle) tally.idlePlayers.push(playerId);
  const count = 1 + rng.weighted([0.7, 0.25, 0.05]);
  const tail = o.tailMinutes * MIN;
  const window = o.toMs - o.fromMs;
  // Starts first, then lengths that fit: sessions of one player never overlap.
  const planned: { start: number; length: number }[] = [];
  for (let i = 0; i < count; i++) {
    const maxLen = Math.max(5 * MIN, window - tail - 10 * MIN);
    const length = Math.round(
      Math.min(maxLen, Math.max(8 * MIN, rng.logNormal(o.sessionMedianMinutes * MIN, 0.6))),
    );
    const latest = o.toMs - tail - length;
    const earliest = o.fromMs + 6 * MIN;
    if (latest <= earliest) continue;
    const start = startTime(rng, earliest, latest);
    planned.push({ start, length: idle ? 16 * MIN : length });
  }
  planned.sort((a, b) => a.start - b.start);
  let balance = 0;
  let busyUntil = 0;
  let firstSession = true;
  for (const p of planned) {
    if (p.start < busyUntil + 5 * MIN) continue;
    busyUntil = p.start + p.length + 2 * MIN;
    tally.sessions++;
    let t = p.start;
    const min = (o.minStartMinutes * o.spotPaisePerHour) / 60;
    const cost = Math.ceil((p.length / HOUR) * o.spotPaisePerHour);
    if (firstSession && rng.chance(0.3))
      add(t - rng.int(20, 60) * SEC, { kind: 'text', text: '/start' });
    firstSession = false;
    if (balance < min + cost / 2) {
      if (rng.chance(o.insufficientRate)) {
        // Presses Play with too little credit: refused, then tops up and comes back.
        tally.insufficientStarts++;
        add(t - 4 * MIN, { kind: 'button', data: 'play' });
      }
      const paid = topup(rng, add, t - rng.int(150, 210) * SEC, cost + min, o, tally);
      if (paid === undefined) {
        // The link was never paid: Play anyway, refused for want of credit, and gone.
        tally.insufficientStarts++;
        add(t, { kind: 'button', data: 'play' });
        continue;
      }
      balance += paid;
    }
    tally.plays++;
    add(t, rng.chance(0.7) ? { kind: 'button', data: 'play' } : { kind: 'text', text: '/play' });
    if (rng.chance(o.doubleClickRate)) {
      tally.doubleClicks++;
      add(t + rng.int(150, 900), { kind: 'button', data: 'play' });
    }
    if (rng.chance(0.3)) {
      tally.statusChecks++;
      add(
        t + rng.int(20, 120) * SEC,
        rng.chance(0.5) ? { kind: 'text', text: '/status' } : { kind: 'button', data: 'status' },
      );
    }
    if (rng.chance(o.abandonedStartRate)) {
      tally.abandonedStarts++;
      add(t + rng.int(8, 40) * SEC, { kind: 'button', data: 'stop' });
      continue;
    }
    if (rng.chance(o.noiseRate))
      noise(rng, add, t + rng.int(3, Math.max(4, p.length / SEC - 60)) * SEC, tally);
    if (rng.chance(o.badInputRate))
      bad(rng, add, t + rng.int(3, Math.max(4, p.length / SEC - 60)) * SEC);
    if (idle) {
      // Never stops: the VM agent reports no input and the idle timeout ends the session.
      tally.idleSessions++;
      balance -= Math.ceil((15 * MIN * o.spotPaisePerHour) / HOUR);
      continue;
    }
    t += p.length;
    if (rng.chance(0.15)) {
      tally.statusChecks++;
      add(t - rng.int(60, 300) * SEC, { kind: 'text', text: '/status' });
    }
    add(t, rng.chance(0.8) ? { kind: 'button', data: 'stop' } : { kind: 'text', text: '/stop' });
    balance -= cost;
    if (rng.chance(0.3))
      add(
        t + rng.int(5, 30) * SEC,
        rng.chance(0.5) ? { kind: 'text', text: '/balance' } : { kind: 'button', data: 'balance' },
      );
    if (rng.chance(0.05)) add(t + rng.int(40, 90) * SEC, { kind: 'button', data: 'history' });
  }
  return out;
}

/** A top-up: /topup, an amount button, then Razorpay's webhooks. Returns what was paid. */
function topup(
  rng: Rng,
  add: (at: number, act: Act) => void,
  at: number,
  need: number,
  o: ModelOptions,
  tally: Tally,
): number | undefined {
  tally.topups++;
  add(at, rng.chance(0.5) ? { kind: 'text', text: '/topup' } : { kind: 'button', data: 'topup' });
  const presets = [...o.topupPresetsPaise].sort((a, b) => a - b);
  const pick = presets[rng.weighted([0.4, 0.35, 0.15, 0.1].slice(0, presets.length))] ?? need;
  const amount = Math.max(pick, presets.find((p) => p >= need) ?? presets.at(-1) ?? need);
  const ref: TopupRef = {};
  let t = at + rng.int(5, 20) * SEC;
  add(t, { kind: 'button', data: `topup:${amount}`, topup: ref });
  if (rng.chance(o.abandonedTopupRate)) {
    tally.abandonedTopups++;
    return undefined;
  }
  const linkId = `plink_${rng.alnum(14)}`;
  const orderId = `order_${rng.alnum(14)}`;
  t += rng.int(40, 100) * SEC;
  if (rng.chance(o.paymentFailedRate)) {
    tally.paymentsFailed++;
    const failed = { paymentId: `pay_${rng.alnum(14)}`, orderId, linkId, amountPaise: amount };
    add(t, {
      kind: 'webhook',
      event: 'payment.failed',
      eventId: `evt_${rng.alnum(14)}`,
      topup: ref,
      payment: failed,
    });
    t += rng.int(15, 30) * SEC;
  }
  tally.paymentsCaptured++;
  const payment = { paymentId: `pay_${rng.alnum(14)}`, orderId, linkId, amountPaise: amount };
  // Razorpay sends both, in either order.
  const captured: Act = {
    kind: 'webhook',
    event: 'payment.captured',
    eventId: `evt_${rng.alnum(14)}`,
    topup: ref,
    payment,
  };
  const linkPaid: Act = {
    kind: 'webhook',
    event: 'payment_link.paid',
    eventId: `evt_${rng.alnum(14)}`,
    topup: ref,
    payment,
  };
  const [first, second] = rng.chance(0.7) ? [captured, linkPaid] : [linkPaid, captured];
  add(t, first);
  add(t + rng.int(50, 1500), second);
  if (rng.chance(o.webhookRetryRate)) {
    // A redelivery well after JetStream's 2-minute de-duplication window.
    tally.webhookRetries++;
    const again = rng.chance(0.5) ? first : second;
    if (again.kind === 'webhook') {
      add(t + rng.int(3, 20) * MIN, { ...again, retryOf: again });
    }
  }
  return amount;
}

function noise(rng: Rng, add: (at: number, act: Act) => void, at: number, tally: Tally): void {
  const kinds = Object.values(NoiseKinds);
  const kind = rng.pick(kinds);
  tally.noise[kind]++;
  switch (kind) {
    case 'unknown_command':
      add(at, { kind: 'text', text: rng.pick(['/restart', '/games', '/settings', '/admin']) });
      return;
    case 'free_text':
      add(at, { kind: 'text', text: rng.pick(['hello?', 'is it working', 'lag 😡', 'thanks!']) });
      return;
    case 'group_chat':
      add(at, { kind: 'text', text: '/play', group: true });
      return;
    case 'topup_out_of_range':
      add(at, { kind: 'button', data: 'topup:50', topup: {} });
      return;
  }
}

function bad(rng: Rng, add: (at: number, act: Act) => void, at: number): void {
  // Counted when written (generate.ts): a bad input outside the window is not written.
  const kind = rng.pick(Object.values(BadKinds));
  add(at, { kind: 'bad', bad: kind });
}
