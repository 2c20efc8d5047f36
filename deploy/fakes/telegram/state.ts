/**
 * What the Telegram fake knows: chats, every message in them (the player's and the bot's,
 * with edits and timestamps), the updates waiting to be fetched or delivered, and the calls
 * made to it. Plain data so a test or the sandbox page can read it as JSON.
 */
import type { Update } from 'grammy/types';

export interface FakeUser {
  id: number;
  is_bot: boolean;
  first_name: string;
  username?: string;
}

export interface InlineButton {
  text: string;
  callback_data?: string;
  url?: string;
}

export interface InlineKeyboard {
  inline_keyboard: InlineButton[][];
}

export interface FakeMessage {
  messageId: number;
  chatId: number;
  /** `bot` for what the bot sent, `user` for what the player typed. */
  from: 'bot' | 'user';
  text: string;
  replyMarkup: InlineKeyboard | undefined;
  /** Milliseconds since the epoch when the fake accepted it. */
  sentAt: number;
  /** Earlier versions, oldest first, each with the time it was replaced. */
  edits: { text: string; replyMarkup: InlineKeyboard | undefined; replacedAt: number }[];
  editedAt: number | undefined;
  deleted: boolean;
}

export interface FakeChat {
  id: number;
  type: 'private';
  firstName: string;
  username: string | undefined;
}

export interface CallbackAnswer {
  callbackQueryId: string;
  text: string | undefined;
  showAlert: boolean;
  at: number;
}

export interface ApiCall {
  method: string;
  params: Record<string, unknown>;
  status: number;
  at: number;
}

export interface InjectedFailure {
  code: number;
  description: string;
  retryAfter: number | undefined;
  remaining: number;
}

/** The highest update_id any fake in this process handed out. */
let highestUpdateId = 0;
/** The highest message_id any fake in this process handed out. */
let highestMessageId = 0;

/**
 * Where a new fake's update_ids start: after every id handed out before, by this process
 * (the highest so far) or by an earlier one (the clock in microseconds; a run would have to
 * hand out more than one update per microsecond to be caught up with). Safe integers until the
 * year 2255.
 */
export function nextRunUpdateId(): number {
  return Math.max(Date.now() * 1_000, highestUpdateId + 1);
}

/**
 * Where a new fake's message_ids start, on the same rule as its update_ids. Telegram never
 * gives a chat's message id to another message, and Respawn keeps where it sent a message it
 * will edit (the gateway's edit records) across restarts: a fake that started again at 1
 * would have those edits land on whatever new message took the old number.
 */
export function nextRunMessageId(): number {
  return Math.max(Date.now() * 1_000, highestMessageId + 1);
}

export class FakeState {
  readonly chats = new Map<number, FakeChat>();
  readonly messages = new Map<number, FakeMessage[]>();
  readonly pending: Update[] = [];
  readonly calls: ApiCall[] = [];
  readonly callbackAnswers: CallbackAnswer[] = [];
  readonly failures = new Map<string, InjectedFailure[]>();
  private nextUpdateId: number;
  private nextMessageId: number;
  private nextCallbackId = 1;

  constructor(
    readonly bot: FakeUser,
    firstUpdateId: number,
    firstMessageId: number = nextRunMessageId(),
  ) {
    this.nextUpdateId = firstUpdateId;
    this.nextMessageId = firstMessageId;
  }

  ensureChat(id: number, user?: Partial<FakeUser>): FakeChat {
    let chat = this.chats.get(id);
    if (chat === undefined) {
      chat = {
        id,
        type: 'private',
        firstName: user?.first_name ?? `Player ${id}`,
        username: user?.username,
      };
      this.chats.set(id, chat);
      this.messages.set(id, []);
    }
    return chat;
  }

  addMessage(
    chatId: number,
    from: 'bot' | 'user',
    text: string,
    replyMarkup?: InlineKeyboard,
  ): FakeMessage {
    this.ensureChat(chatId);
    const m: FakeMessage = {
      messageId: this.takeMessageId(),
      chatId,
      from,
      text,
      replyMarkup,
      sentAt: Date.now(),
      edits: [],
      editedAt: undefined,
      deleted: false,
    };
    this.messages.get(chatId)!.push(m);
    return m;
  }

  private takeMessageId(): number {
    const id = this.nextMessageId++;
    highestMessageId = Math.max(highestMessageId, id);
    return id;
  }

  findMessage(chatId: number, messageId: number): FakeMessage | undefined {
    return this.messages.get(chatId)?.find((m) => m.messageId === messageId);
  }

  /** Queues an update; an absent update_id gets the next one. */
  enqueue(update: Omit<Update, 'update_id'> & { update_id?: number }): Update {
    const id = update.update_id ?? this.nextUpdateId;
    this.nextUpdateId = Math.max(this.nextUpdateId, id + 1);
    highestUpdateId = Math.max(highestUpdateId, id);
    const full: Update = { ...update, update_id: id };
    this.pending.push(full);
    return full;
  }

  /** getUpdates semantics: everything below `offset` is confirmed and forgotten. */
  confirmBelow(offset: number): void {
    while (this.pending.length > 0 && this.pending[0]!.update_id < offset) this.pending.shift();
  }

  takeFailure(method: string): InjectedFailure | undefined {
    const list = this.failures.get(method);
    const f = list?.[0];
    if (f === undefined) return undefined;
    f.remaining--;
    if (f.remaining <= 0) list!.shift();
    return f;
  }

  newCallbackId(): string {
    return String(this.nextCallbackId++);
  }

  userOf(chatId: number): FakeUser {
    const chat = this.ensureChat(chatId);
    return {
      id: chat.id,
      is_bot: false,
      first_name: chat.firstName,
      ...(chat.username === undefined ? {} : { username: chat.username }),
    };
  }

  /** The Bot API's view of a message. */
  toApiMessage(m: FakeMessage): Record<string, unknown> {
    const chat = this.ensureChat(m.chatId);
    return {
      message_id: m.messageId,
      date: Math.floor(m.sentAt / 1000),
      chat: {
        id: chat.id,
        type: chat.type,
        first_name: chat.firstName,
        ...(chat.username === undefined ? {} : { username: chat.username }),
      },
      from: m.from === 'bot' ? this.bot : this.userOf(m.chatId),
      text: m.text,
      ...(m.text.startsWith('/')
        ? { entities: [{ type: 'bot_command', offset: 0, length: m.text.split(/\s/)[0]!.length }] }
        : {}),
      ...(m.editedAt === undefined ? {} : { edit_date: Math.floor(m.editedAt / 1000) }),
      ...(m.replyMarkup === undefined ? {} : { reply_markup: m.replyMarkup }),
    };
  }
}

/** Type of an update: its one field besides `update_id`. */
export function updateType(u: Update): string {
  return Object.keys(u).find((k) => k !== 'update_id') ?? 'unknown';
}
