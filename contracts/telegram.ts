/**
 * What the ingress routers of `respawn.in.telegram` and `respawn.in.agent` share with the rest:
 * their durable consumers and dead-letter subjects, the few fields of a Telegram update the
 * bot router reads (everything else is kept but never interpreted), and the callback data of
 * the bot's inline buttons.
 */
import { AckPolicy, DeliverPolicy, type ConsumerConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { z } from 'zod';
import { ErrorCodes, TerminalError } from './errors.ts';
import { parseJson } from './message.ts';
import { ROOT, ingressSubject, validToken, type IngressSource } from './subjects.ts';

/** Dead letters of an ingress router, by reason: `nats sub 'respawn.dlq.telegram.>'`. */
export function ingressDlqSubject(source: IngressSource, code: string): string {
  return `${ROOT}.dlq.${validToken(source, 'source')}.${validToken(code, 'code')}`;
}

/** The default durable consumer of one ingress source (`ingress-telegram`, `ingress-agent`). */
export function ingressConsumerName(source: IngressSource): string {
  return `ingress-${validToken(source, 'source')}`;
}

/** How long a router may hold an ingress message before it is offered again. */
export const INGRESS_ACK_WAIT_MS = 10_000;

/** The durable pull consumer of one ingress source on RESPAWN_IN. */
export function ingressConsumer(
  source: IngressSource,
  durable: string = ingressConsumerName(source),
): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: validToken(durable, 'durable'),
    description: `Ingress router: ${source} to actor commands`,
    filter_subject: ingressSubject(source),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(INGRESS_ACK_WAIT_MS),
    max_ack_pending: 64,
    max_deliver: -1,
    max_waiting: 512,
  };
}

// --- Telegram updates: only the fields the bot reads; the rest passes through unread. ---

const telegramId = z.number().int().safe();

export const TelegramUserSchema = z
  .object({ id: telegramId, is_bot: z.boolean().optional(), first_name: z.string().optional() })
  .loose();

export const TelegramChatTypes = {
  private: 'private',
  group: 'group',
  supergroup: 'supergroup',
  channel: 'channel',
} as const;

export const TelegramChatSchema = z.object({ id: telegramId, type: z.string() }).loose();

export const TelegramMessageSchema = z
  .object({
    message_id: z.number().int(),
    from: TelegramUserSchema.optional(),
    chat: TelegramChatSchema,
    text: z.string().optional(),
  })
  .loose();

export const TelegramCallbackQuerySchema = z
  .object({
    id: z.string(),
    from: TelegramUserSchema,
    /** Absent for buttons under inline-mode messages, or messages too old for Telegram. */
    message: z
      .object({ message_id: z.number().int(), chat: TelegramChatSchema })
      .loose()
      .optional(),
    data: z.string().optional(),
  })
  .loose();

export const TelegramUpdateSchema = z
  .object({
    update_id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    message: TelegramMessageSchema.optional(),
    callback_query: TelegramCallbackQuerySchema.optional(),
  })
  .loose();

export type TelegramUpdate = z.infer<typeof TelegramUpdateSchema>;
export type TelegramMessage = z.infer<typeof TelegramMessageSchema>;
export type TelegramCallbackQuery = z.infer<typeof TelegramCallbackQuerySchema>;

/** Validates an update stored by the gateway; TerminalError (dead letter) when it is not one. */
export function decodeTelegramUpdate(data: Uint8Array): TelegramUpdate {
  const r = TelegramUpdateSchema.safeParse(parseJson(data));
  if (!r.success) {
    const issues = r.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new TerminalError(ErrorCodes.invalidPayload, `invalid Telegram update: ${issues}`);
  }
  return r.data;
}

// --- The bot's inline buttons. ---

/** Callback data of the menu buttons (what `TelegramSend.buttons[].data` carries). */
export const BotActions = {
  play: 'play',
  stop: 'stop',
  status: 'status',
  balance: 'balance',
  topup: 'topup',
  history: 'history',
  help: 'help',
  /** The tier policy (Spot only, or Spot then On-Demand): shown, with buttons to change it. */
  tier: 'tier',
} as const;
export type BotAction = (typeof BotActions)[keyof typeof BotActions];

/** `tier:spot` / `tier:any`: the tier-policy buttons (Spot only; Spot, else On-Demand). */
export const TierCallbackData = { spotOnly: 'tier:spot', any: 'tier:any' } as const;

/** The policy a tier button sets (`spotOnly`), or undefined for any other data. */
export function parseTierCallbackData(data: string): boolean | undefined {
  if (data === TierCallbackData.spotOnly) return true;
  if (data === TierCallbackData.any) return false;
  return undefined;
}

const TOPUP_DATA = /^topup:([1-9]\d{0,9})$/;

/** `topup:<paise>`: a top-up amount button (the bot's and billing's). */
export function topupCallbackData(amountPaise: number): string {
  if (!Number.isSafeInteger(amountPaise) || amountPaise <= 0) {
    throw new RangeError(`top-up amount ${amountPaise} is not a positive integer of paise`);
  }
  return `topup:${amountPaise}`;
}

/** The amount of a `topup:<paise>` button, or undefined for any other data. */
export function parseTopupCallbackData(data: string): number | undefined {
  const m = TOPUP_DATA.exec(data);
  if (m?.[1] === undefined) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Telegram refuses callback data longer than this many bytes. */
const CALLBACK_DATA_MAX_BYTES = 64;
const STOP_DATA = /^stop:([A-Za-z0-9_-]{1,64})$/;

/**
 * `stop:<session>`: the Stop button under a session's ready message, so a press on an old one
 * stops that session only, never a later one. A session id too long for Telegram's callback
 * data gets the plain `stop` (whatever runs).
 */
export function stopCallbackData(sessionId: string | undefined): StopCallbackData {
  const data = `stop:${sessionId ?? ''}` as const;
  return STOP_DATA.test(data) && Buffer.byteLength(data) <= CALLBACK_DATA_MAX_BYTES
    ? data
    : BotActions.stop;
}
export type StopCallbackData = typeof BotActions.stop | `stop:${string}`;

/** The session of a `stop:<session>` button, or undefined for any other data. */
export function parseStopCallbackData(data: string): string | undefined {
  return STOP_DATA.exec(data)?.[1];
}
