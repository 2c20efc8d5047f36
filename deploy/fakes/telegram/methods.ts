/**
 * The Bot API methods the fake speaks, as Telegram answers them: the same result shapes,
 * the same error codes and descriptions for the cases Respawn meets (message not found,
 * not modified, too long, bad buttons, 429 with retry_after, webhook conflicts).
 */
import type { Update } from 'grammy/types';
import { updateType, type FakeState, type InlineButton, type InlineKeyboard } from './state.ts';

export type ApiResponse =
  | { ok: true; result: unknown }
  | {
      ok: false;
      error_code: number;
      description: string;
      parameters?: { retry_after?: number };
    };

export interface WebhookConfig {
  url: string;
  secretToken: string | undefined;
  allowedUpdates: string[] | undefined;
}

export interface MethodContext {
  state: FakeState;
  webhook: WebhookConfig | undefined;
  setWebhook(cfg: WebhookConfig | undefined): void;
  /** Resolves when an update is queued or after `ms`; false if another poll replaced this one. */
  waitForUpdates(ms: number): Promise<boolean>;
  allowedUpdates: string[] | undefined;
  setAllowedUpdates(list: string[] | undefined): void;
}

export class ApiFailure extends Error {
  constructor(
    readonly code: number,
    readonly description: string,
    readonly retryAfter?: number,
  ) {
    super(description);
  }
}

const badRequest = (what: string): ApiFailure => new ApiFailure(400, `Bad Request: ${what}`);

function int(params: Record<string, unknown>, name: string, required = true): number | undefined {
  const v = params[name];
  if (v === undefined || v === null || v === '') {
    if (required) throw badRequest(`${name} is empty`);
    return undefined;
  }
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n)) throw badRequest(`invalid ${name} specified`);
  return n;
}

function str(params: Record<string, unknown>, name: string): string | undefined {
  const v = params[name];
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function jsonParam(params: Record<string, unknown>, name: string): unknown {
  const v = params[name];
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    throw badRequest(`can't parse ${name} JSON object`);
  }
}

function messageText(params: Record<string, unknown>): string {
  const text = str(params, 'text') ?? '';
  if (text.trim().length === 0) throw badRequest('message text is empty');
  if ([...text].length > 4096) throw badRequest('message is too long');
  return text;
}

function replyMarkup(params: Record<string, unknown>): InlineKeyboard | undefined {
  const raw = jsonParam(params, 'reply_markup');
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || !('inline_keyboard' in raw) || !Array.isArray(raw.inline_keyboard))
    throw badRequest("can't parse reply keyboard markup JSON object");
  const rows: InlineButton[][] = [];
  for (const row of raw.inline_keyboard as unknown[]) {
    if (!Array.isArray(row))
      throw badRequest(
        'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays',
      );
    const out: InlineButton[] = [];
    for (const b of row as unknown[]) {
      if (typeof b !== 'object' || b === null)
        throw badRequest("can't parse inline keyboard button");
      const btn = b as Record<string, unknown>;
      if (typeof btn.text !== 'string' || btn.text.length === 0)
        throw badRequest('text buttons are unallowed in the inline keyboard');
      const data = btn.callback_data;
      const url = btn.url;
      if (typeof data === 'string') {
        if (Buffer.byteLength(data) < 1 || Buffer.byteLength(data) > 64)
          throw badRequest('BUTTON_DATA_INVALID');
        out.push({ text: btn.text, callback_data: data });
      } else if (typeof url === 'string') {
        if (!/^(https?|tg):\/\//.test(url))
          throw badRequest('inline keyboard button URL is invalid');
        out.push({ text: btn.text, url });
      } else {
        throw badRequest(
          'can\'t find field "callback_data" or "url" in the inline keyboard button',
        );
      }
    }
    rows.push(out);
  }
  return { inline_keyboard: rows };
}

function sameMarkup(a: InlineKeyboard | undefined, b: InlineKeyboard | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function allowedList(params: Record<string, unknown>): string[] | undefined {
  const raw = jsonParam(params, 'allowed_updates');
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw) || !raw.every((x) => typeof x === 'string'))
    throw badRequest("can't parse allowed updates");
  return raw.length === 0 ? undefined : raw;
}

function selectable(ctx: MethodContext, u: Update): boolean {
  return ctx.allowedUpdates === undefined || ctx.allowedUpdates.includes(updateType(u));
}

async function getUpdates(ctx: MethodContext, params: Record<string, unknown>): Promise<unknown> {
  if (ctx.webhook !== undefined) {
    throw new ApiFailure(
      409,
      "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
    );
  }
  const offset = int(params, 'offset', false);
  const limit = Math.min(100, Math.max(1, int(params, 'limit', false) ?? 100));
  const timeoutS = Math.max(0, int(params, 'timeout', false) ?? 0);
  const allowed = allowedList(params);
  if (allowed !== undefined || params.allowed_updates !== undefined) ctx.setAllowedUpdates(allowed);
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    if (offset !== undefined) ctx.state.confirmBelow(offset);
    // Updates the bot did not ask for are dropped, as Telegram does.
    for (let i = ctx.state.pending.length - 1; i >= 0; i--) {
      if (!selectable(ctx, ctx.state.pending[i]!)) ctx.state.pending.splice(i, 1);
    }
    const batch = ctx.state.pending.slice(0, limit);
    const left = deadline - Date.now();
    if (batch.length > 0 || left <= 0) return batch;
    if (!(await ctx.waitForUpdates(left))) {
      throw new ApiFailure(
        409,
        'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
      );
    }
  }
}

function sendMessage(ctx: MethodContext, params: Record<string, unknown>): unknown {
  const chatId = int(params, 'chat_id')!;
  const text = messageText(params);
  const markup = replyMarkup(params);
  const m = ctx.state.addMessage(chatId, 'bot', text, markup);
  return ctx.state.toApiMessage(m);
}

function editMessageText(ctx: MethodContext, params: Record<string, unknown>): unknown {
  if (params.inline_message_id !== undefined)
    throw badRequest('inline messages are not supported by the fake');
  const chatId = int(params, 'chat_id')!;
  const messageId = int(params, 'message_id')!;
  const text = messageText(params);
  const markup = replyMarkup(params);
  const m = ctx.state.findMessage(chatId, messageId);
  if (m === undefined || m.deleted) throw badRequest('message to edit not found');
  if (m.from !== 'bot') throw badRequest("message can't be edited");
  if (m.text === text && sameMarkup(m.replyMarkup, markup)) {
    throw badRequest(
      'message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
    );
  }
  const now = Date.now();
  m.edits.push({ text: m.text, replyMarkup: m.replyMarkup, replacedAt: now });
  m.text = text;
  m.replyMarkup = markup;
  m.editedAt = now;
  return ctx.state.toApiMessage(m);
}

function deleteMessage(ctx: MethodContext, params: Record<string, unknown>): unknown {
  const m = ctx.state.findMessage(int(params, 'chat_id')!, int(params, 'message_id')!);
  if (m === undefined || m.deleted) throw badRequest('message to delete not found');
  m.deleted = true;
  return true;
}

function answerCallbackQuery(ctx: MethodContext, params: Record<string, unknown>): unknown {
  const id = str(params, 'callback_query_id');
  if (id === undefined || id === '') throw badRequest('callback_query_id is empty');
  ctx.state.callbackAnswers.push({
    callbackQueryId: id,
    text: str(params, 'text'),
    showAlert: params.show_alert === true || params.show_alert === 'true',
    at: Date.now(),
  });
  return true;
}

function setWebhook(ctx: MethodContext, params: Record<string, unknown>): unknown {
  const url = str(params, 'url') ?? '';
  if (url === '') {
    ctx.setWebhook(undefined);
    return true;
  }
  if (!/^https?:\/\//.test(url))
    throw badRequest('bad webhook: An HTTPS URL must be provided for webhook');
  const secretToken = str(params, 'secret_token');
  if (secretToken !== undefined && !/^[A-Za-z0-9_-]{1,256}$/.test(secretToken))
    throw badRequest('secret token contains unallowed characters');
  if (params.drop_pending_updates === true) ctx.state.pending.length = 0;
  const allowed = allowedList(params);
  ctx.setAllowedUpdates(allowed);
  ctx.setWebhook({ url, secretToken, allowedUpdates: allowed });
  return true;
}

function deleteWebhook(ctx: MethodContext, params: Record<string, unknown>): unknown {
  if (params.drop_pending_updates === true) ctx.state.pending.length = 0;
  ctx.setWebhook(undefined);
  return true;
}

function getWebhookInfo(ctx: MethodContext): unknown {
  return {
    url: ctx.webhook?.url ?? '',
    has_custom_certificate: false,
    pending_update_count: ctx.state.pending.length,
    ...(ctx.allowedUpdates === undefined ? {} : { allowed_updates: ctx.allowedUpdates }),
  };
}

export async function callMethod(
  ctx: MethodContext,
  method: string,
  params: Record<string, unknown>,
): Promise<ApiResponse> {
  try {
    const failure = ctx.state.takeFailure(method);
    if (failure !== undefined)
      throw new ApiFailure(failure.code, failure.description, failure.retryAfter);
    let result: unknown;
    switch (method) {
      case 'getMe':
        result = ctx.state.bot;
        break;
      case 'getUpdates':
        result = await getUpdates(ctx, params);
        break;
      case 'sendMessage':
        result = sendMessage(ctx, params);
        break;
      case 'editMessageText':
        result = editMessageText(ctx, params);
        break;
      case 'deleteMessage':
        result = deleteMessage(ctx, params);
        break;
      case 'answerCallbackQuery':
        result = answerCallbackQuery(ctx, params);
        break;
      case 'setWebhook':
        result = setWebhook(ctx, params);
        break;
      case 'deleteWebhook':
        result = deleteWebhook(ctx, params);
        break;
      case 'getWebhookInfo':
        result = getWebhookInfo(ctx);
        break;
      default:
        throw new ApiFailure(404, 'Not Found: method not found');
    }
    return { ok: true, result };
  } catch (err) {
    if (!(err instanceof ApiFailure)) throw err;
    return {
      ok: false,
      error_code: err.code,
      description: err.description,
      ...(err.retryAfter === undefined ? {} : { parameters: { retry_after: err.retryAfter } }),
    };
  }
}
