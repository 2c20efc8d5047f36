/**
 * One TelegramSend → one Bot API call through grammY: an edit in place when its editKey
 * already names a message (falling back to a new message if that one is gone), otherwise a
 * new message. The answer is classified by what should happen to the out message next.
 */
import { GrammyError, HttpError, type Api } from 'grammy';
import type { InlineKeyboardButton, InlineKeyboardMarkup } from 'grammy/types';
import {
  SpanKind,
  TraceAttributes,
  withSpan,
  type MessageOf,
  type TelegramSend,
} from '../../contracts/index.ts';
import { scrub } from '../log.ts';
import type { OutboundMetrics } from '../metrics.ts';
import type { SentStore } from './sent-store.ts';

export type TelegramSendMessage = MessageOf<typeof TelegramSend>;

export type CallOutcome =
  | { kind: 'sent'; messageId: number; edited: boolean }
  /** Telegram's flood control: try the same call again after `ms`. */
  | { kind: 'retry_after'; ms: number; description: string }
  /** Network, Telegram 5xx, or the bot's own configuration (401/404): retry with backoff. */
  | { kind: 'transient'; description: string }
  /** Telegram refused this message for good (400, 403: blocked, chat not found): dead-letter. */
  | { kind: 'rejected'; description: string };

/** Label of the button a `url` becomes (the contract carries the link, not a label). */
export const URL_BUTTON_TEXT = 'Open link';

const EDIT_TARGET_GONE = /message to edit not found|message can't be edited|MESSAGE_ID_INVALID/i;
const NOT_MODIFIED = /message is not modified/i;

export function keyboardOf(msg: TelegramSendMessage): InlineKeyboardMarkup | undefined {
  const rows: InlineKeyboardButton[][] = (msg.buttons ?? []).map((row) =>
    row.map((b) => ({ text: b.text, callback_data: b.data })),
  );
  if (msg.url !== undefined) rows.push([{ text: URL_BUTTON_TEXT, url: msg.url }]);
  return rows.length === 0 ? undefined : { inline_keyboard: rows };
}

/** What went wrong, safe to log: never the token (grammY's HttpError wraps a URL holding it). */
export function describeTelegramError(err: unknown, secrets: readonly string[]): string {
  if (err instanceof GrammyError) return `${err.error_code}: ${err.description}`;
  if (err instanceof HttpError) {
    const inner = err.error instanceof Error ? err.error.message : String(err.error);
    return scrub(`${err.message} (${inner})`, secrets);
  }
  return scrub(err instanceof Error ? err.message : String(err), secrets);
}

export function classify(err: unknown, secrets: readonly string[]): CallOutcome {
  const description = describeTelegramError(err, secrets);
  if (err instanceof GrammyError) {
    if (err.error_code === 429) {
      const s = err.parameters.retry_after ?? 1;
      return { kind: 'retry_after', ms: Math.max(0, s) * 1000, description };
    }
    if (err.error_code >= 500 || err.error_code === 401 || err.error_code === 404) {
      return { kind: 'transient', description };
    }
    return { kind: 'rejected', description };
  }
  return { kind: 'transient', description };
}

export type TelegramCaller = (msg: TelegramSendMessage) => Promise<CallOutcome>;

export function createTelegramCaller(deps: {
  api: Api;
  store: SentStore;
  metrics: OutboundMetrics;
  /** Strings never to let into a description (the bot token). */
  secrets: readonly string[];
}): TelegramCaller {
  const { api, metrics } = deps;

  /** One Bot API call: timed, and a client span (the HTTP call nests under it). */
  async function timed<T>(method: string, call: () => Promise<T>): Promise<T> {
    const end = metrics.sendSeconds.startTimer({ method });
    try {
      return await withSpan(
        `telegram ${method}`,
        {
          kind: SpanKind.CLIENT,
          attributes: { [TraceAttributes.operation]: method },
          describeError: (err) => describeTelegramError(err, deps.secrets),
        },
        () => call(),
      );
    } finally {
      end();
    }
  }

  return async (msg) => {
    const chatId = Number(msg.chatId);
    const markup = keyboardOf(msg);
    const other = markup === undefined ? {} : { reply_markup: markup };
    // `fresh`: a new message (it notifies) that takes the editKey over (outbound.ts records it).
    if (msg.editKey !== undefined && msg.fresh !== true) {
      const target = await deps.store.editTarget(msg.chatId, msg.editKey);
      if (target !== undefined) {
        try {
          await timed('editMessageText', () =>
            api.editMessageText(chatId, target, msg.text, other),
          );
          return { kind: 'sent', messageId: target, edited: true };
        } catch (err) {
          if (
            err instanceof GrammyError &&
            err.error_code === 400 &&
            NOT_MODIFIED.test(err.description)
          ) {
            // Already shows exactly this: the edit's effect is there.
            return { kind: 'sent', messageId: target, edited: true };
          }
          const gone =
            err instanceof GrammyError &&
            err.error_code === 400 &&
            EDIT_TARGET_GONE.test(err.description);
          if (!gone) return classify(err, deps.secrets);
          // The player deleted it (or it is too old to edit): a new message takes its place.
        }
      }
    }
    try {
      const sent = await timed('sendMessage', () => api.sendMessage(chatId, msg.text, other));
      return { kind: 'sent', messageId: sent.message_id, edited: false };
    } catch (err) {
      return classify(err, deps.secrets);
    }
  };
}
