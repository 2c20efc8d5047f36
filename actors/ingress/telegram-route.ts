/**
 * Turns a Telegram update (stored raw on `respawn.in.telegram` by the gateway) into session
 * and billing commands and the bot's own replies. Pure: the router around it does the I/O.
 *
 * The player id is the Telegram user id, the reply goes to the update's chat. Every message
 * id derives from `update_id` (and the action), so a redelivered update routes to the same
 * ids and JetStream drops the repeats. Only private chats act; anything the bot does not use
 * is ignored (no commands, no error to the player), and so is a command addressed to another
 * bot (`/play@other_bot`); input that is not an update at all is a TerminalError (dead letter).
 */
import {
  ActorKinds,
  BillingBalance,
  BillingRegister,
  BillingHistory,
  BillingTopup,
  BotActions,
  SessionStart,
  SessionSettings,
  SessionStatus,
  SessionStop,
  TelegramChatTypes,
  TelegramSend,
  cmdSubject,
  decodeTelegramUpdate,
  outTelegramSubject,
  parseStopCallbackData,
  parseTierCallbackData,
  parseTopupCallbackData,
  type BotAction,
  type MessageDef,
  type TelegramCallbackQuery,
  type TelegramMessage,
} from '../../contracts/index.ts';
import { botTexts, menuButtons, topupButtons, type Button } from './bot-texts.ts';
import type { IngressRoute, RouteContext, RoutedCommand } from './router.ts';

/** Billing's default presets (`RESPAWN_BILLING_TOPUP_PRESETS_PAISE`); pass the configured ones. */
export const DEFAULT_TOPUP_PRESETS_PAISE: readonly number[] = [10_000, 25_000, 50_000, 100_000];

export interface TelegramRouteOptions {
  /** Amounts offered on the top-up buttons, in paise. */
  topupPresetsPaise?: readonly number[];
  /** Entries asked for by History. */
  historyLimit?: number;
  /**
   * The bot's own username (getMe's, with or without the `@`), so `/play@other_bot` is told
   * apart from `/play@this_bot`. Without it no `@` suffix can be known to be ours: in a group
   * such a command is ignored (silence beats answering another bot's command), in a private
   * chat, where only this bot listens, it is taken as ours.
   */
  botUsername?: string;
}

interface RouteOptions {
  topupPresetsPaise: readonly number[];
  historyLimit: number;
  /** Lower case, without the `@`. */
  botUsername: string | undefined;
}

interface Who {
  playerId: string;
  chatId: string;
  /** `tg-<update_id>`: every id this update routes to starts with it. */
  base: string;
  /** The update's update_id: the order of this player's inputs. */
  updateId: number;
}

const COMMAND = /^\/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?:\s[\s\S]*)?$/;
const USERNAME = /^@?([A-Za-z0-9_]{1,64})$/;

/** The configured username, lower case and without the `@`; throws on one Telegram never gives. */
function botUsernameOf(given: string | undefined): string | undefined {
  if (given === undefined) return undefined;
  const m = USERNAME.exec(given.trim());
  if (m === null)
    throw new Error(`botUsername: ${JSON.stringify(given)} is not a Telegram username`);
  return m[1]!.toLowerCase();
}

/** What a text is to this bot: no command, a command for another bot, or one of its own. */
type Addressed = { kind: 'text' } | { kind: 'other-bot' } | { kind: 'command'; name: string };

/** Telegram usernames are case-insensitive; command names are read so too. */
function addressed(text: string, privateChat: boolean, opts: RouteOptions): Addressed {
  const m = COMMAND.exec(text.trim());
  if (m === null) return { kind: 'text' };
  const to = m[2]?.toLowerCase();
  const ours =
    to === undefined || (opts.botUsername === undefined ? privateChat : to === opts.botUsername);
  return ours ? { kind: 'command', name: m[1]!.toLowerCase() } : { kind: 'other-bot' };
}

const TYPED: Readonly<Record<string, BotAction | 'start'>> = {
  start: 'start',
  menu: 'start',
  play: BotActions.play,
  stop: BotActions.stop,
  status: BotActions.status,
  balance: BotActions.balance,
  topup: BotActions.topup,
  history: BotActions.history,
  help: BotActions.help,
  tier: BotActions.tier,
};

function isBotAction(v: string): v is BotAction {
  return (Object.values(BotActions) as string[]).includes(v);
}

function command<T extends string, P>(
  def: MessageDef<T, P>,
  subject: string,
  msgId: string,
  value: P,
): RoutedCommand {
  return { subject, msgId, type: def.type, data: def.encode(value) };
}

/**
 * The bot's own answers (menu, help, top-up amounts, "not a command"): the same every time it
 * is asked, so a newer one of the same kind queued for the chat replaces one not yet sent.
 */
function say(w: Who, suffix: string, text: string, buttons?: Button[][]): RoutedCommand {
  return command(TelegramSend, outTelegramSubject(w.chatId), `${w.base}-${suffix}`, {
    chatId: w.chatId,
    text,
    collapseKey: suffix,
    ...(buttons === undefined || buttons.length === 0 ? {} : { buttons }),
  });
}

function act(w: Who, action: BotAction, opts: RouteOptions): RoutedCommand {
  const id = `${w.base}-${action}`;
  const session = (verb: string): string => cmdSubject(ActorKinds.session, w.playerId, verb);
  const billing = (verb: string): string => cmdSubject(ActorKinds.billing, w.playerId, verb);
  switch (action) {
    case BotActions.play:
      return command(SessionStart, session('start'), id, {
        requestedBy: 'player',
        inputSeq: w.updateId,
        chatId: w.chatId,
      });
    case BotActions.stop:
      return stopSession(w);
    case BotActions.status:
      return command(SessionStatus, session('status'), id, {
        requestedBy: 'player',
        chatId: w.chatId,
      });
    case BotActions.balance:
      return command(BillingBalance, billing('balance'), id, { chatId: w.chatId });
    case BotActions.history:
      return command(BillingHistory, billing('history'), id, {
        chatId: w.chatId,
        limit: opts.historyLimit,
      });
    case BotActions.topup:
      return say(w, 'topup', botTexts.topup, topupButtons(opts.topupPresetsPaise));
    case BotActions.help:
      return say(w, 'help', botTexts.help, menuButtons);
    case BotActions.tier:
      return command(SessionSettings, session('settings'), id, {
        requestedBy: 'player',
        chatId: w.chatId,
      });
  }
}

/** Stop, of whatever runs, or of one session only (`stop:<session>`, an old one stops nothing). */
function stopSession(w: Who, sessionId?: string): RoutedCommand {
  return command(
    SessionStop,
    cmdSubject(ActorKinds.session, w.playerId, 'stop'),
    `${w.base}-${BotActions.stop}`,
    {
      requestedBy: 'player',
      inputSeq: w.updateId,
      reason: 'player',
      ...(sessionId === undefined ? {} : { sessionId }),
    },
  );
}

/** A tier-policy button: the session keeps the player's choice. */
function setTier(w: Who, spotOnly: boolean): RoutedCommand {
  return command(
    SessionSettings,
    cmdSubject(ActorKinds.session, w.playerId, 'settings'),
    `${w.base}-tier`,
    { requestedBy: 'player', chatId: w.chatId, spotOnly },
  );
}

function topup(w: Who, amountPaise: number): RoutedCommand {
  return command(
    BillingTopup,
    cmdSubject(ActorKinds.billing, w.playerId, 'topup'),
    `${w.base}-topup-${amountPaise}`,
    // One update is one top-up, however often it is delivered.
    { requestId: w.base, chatId: w.chatId, amountPaise },
  );
}

function routeMessage(m: TelegramMessage, updateId: number, opts: RouteOptions): RoutedCommand[] {
  if (m.from === undefined || m.from.is_bot === true || m.text === undefined) return [];
  const w: Who = {
    playerId: String(m.from.id),
    chatId: String(m.chat.id),
    base: `tg-${updateId}`,
    updateId,
  };
  const privateChat = m.chat.type === TelegramChatTypes.private;
  const input = addressed(m.text, privateChat, opts);
  // Another bot's command is not ours to answer, not even with a hint.
  if (input.kind === 'other-bot') return [];
  if (!privateChat) {
    // Groups see one line, and only when someone addressed a command at the bot.
    return input.kind === 'command' ? [say(w, 'private-only', botTexts.privateOnly)] : [];
  }
  if (input.kind === 'text') return [say(w, 'hint', botTexts.notACommand)];
  const { name } = input;
  const action = TYPED[name];
  if (action === undefined) return [say(w, 'unknown', botTexts.unknownCommand(name))];
  if (action === 'start') {
    return [
      say(w, 'menu', botTexts.welcome(m.from.first_name), menuButtons),
      // The player's account: opened on the first /start, the chat remembered on each.
      command(
        BillingRegister,
        cmdSubject(ActorKinds.billing, w.playerId, 'register'),
        `${w.base}-register`,
        {
          chatId: w.chatId,
        },
      ),
    ];
  }
  return [act(w, action, opts)];
}

function routeCallback(
  q: TelegramCallbackQuery,
  updateId: number,
  opts: RouteOptions,
): RoutedCommand[] {
  // Without the message we do not know the chat (inline-mode buttons): nothing to do.
  if (q.message === undefined || q.data === undefined || q.from.is_bot === true) return [];
  if (q.message.chat.type !== TelegramChatTypes.private) return [];
  const w: Who = {
    playerId: String(q.from.id),
    chatId: String(q.message.chat.id),
    base: `tg-${updateId}`,
    updateId,
  };
  if (isBotAction(q.data)) return [act(w, q.data, opts)];
  const stopOf = parseStopCallbackData(q.data);
  if (stopOf !== undefined) return [stopSession(w, stopOf)];
  const spotOnly = parseTierCallbackData(q.data);
  if (spotOnly !== undefined) return [setTier(w, spotOnly)];
  const amount = parseTopupCallbackData(q.data);
  // Billing checks the amount against its limits; a stale or foreign button is ignored.
  return amount === undefined ? [] : [topup(w, amount)];
}

/** Routes one stored update. Throws a TerminalError only for bytes that are not an update. */
export function routeTelegramUpdate(
  data: Uint8Array,
  _ctx?: RouteContext,
  options: TelegramRouteOptions = {},
): RoutedCommand[] {
  const opts: RouteOptions = {
    topupPresetsPaise: options.topupPresetsPaise ?? DEFAULT_TOPUP_PRESETS_PAISE,
    historyLimit: options.historyLimit ?? 10,
    botUsername: botUsernameOf(options.botUsername),
  };
  const u = decodeTelegramUpdate(data);
  // edited_message, channel_post, my_chat_member and the rest are not acted on.
  if (u.message !== undefined) return routeMessage(u.message, u.update_id, opts);
  if (u.callback_query !== undefined) return routeCallback(u.callback_query, u.update_id, opts);
  return [];
}

export function createTelegramRoute(options: TelegramRouteOptions = {}): IngressRoute {
  // A username Telegram never gives fails here, at start, not on every update.
  botUsernameOf(options.botUsername);
  return (data, ctx) => routeTelegramUpdate(data, ctx, options);
}
