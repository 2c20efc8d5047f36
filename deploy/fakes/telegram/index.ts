/**
 * A Telegram Bot API fake for tests and the local sandbox: the real grammY client is pointed
 * at it with `apiRoot`. It speaks getMe, getUpdates (offset, long-poll timeout), sendMessage
 * with inline keyboards, editMessageText, deleteMessage, answerCallbackQuery, setWebhook,
 * deleteWebhook and getWebhookInfo; it records every message per chat with timestamps, can
 * answer the next call of a method with an error (429 with retry_after), and delivers
 * updates to a webhook with the secret token header, retrying until it gets a 2xx.
 *
 * Its state is readable over HTTP too (for a browser sandbox): `GET /_fake/chats`,
 * `GET|POST /_fake/chats/<id>/messages`, `POST /_fake/chats/<id>/callback`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Update } from 'grammy/types';
import { callMethod, type MethodContext, type WebhookConfig } from './methods.ts';
import {
  FakeState,
  nextRunUpdateId,
  type ApiCall,
  type CallbackAnswer,
  type FakeMessage,
  type FakeUser,
} from './state.ts';
import { createWebhookDeliverer, type Delivery } from './webhook.ts';

export type { ApiCall, CallbackAnswer, Delivery, FakeMessage, FakeUser, WebhookConfig };

export interface TelegramFakeOptions {
  /** The bot token the fake accepts; other tokens get 401 Unauthorized. */
  token: string;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  botUsername?: string;
  /** Pause before a failed webhook delivery is tried again. Default 500 ms. */
  webhookRetryMs?: number;
  /**
   * The first `update_id` handed out. Default: after every id an earlier fake handed out
   * (`nextRunUpdateId`), so a restarted fake never repeats one, as Telegram never does; a fixed
   * start would repeat
   * ids that a Respawn with a persistent store has seen, and their replies would be dropped,
   * rightly, as duplicates.
   */
  firstUpdateId?: number;
}

export interface PlayerRef {
  id: number;
  first_name?: string;
  username?: string;
}

export interface FailureSpec {
  code: number;
  /** Seconds; sent as `parameters.retry_after` (with a 429 description when none is given). */
  retryAfter?: number;
  description?: string;
  /** How many calls fail; default 1. */
  times?: number;
}

export interface ChatSummary {
  id: number;
  firstName: string;
  username: string | undefined;
  messages: number;
  last: FakeMessage | undefined;
}

export interface TelegramFake {
  /** The `apiRoot` to give grammY. */
  readonly url: string;
  readonly token: string;
  readonly bot: FakeUser;
  stop(): Promise<void>;
  /** What the bot sent to a chat (current text, edit history, timestamps), in send order. */
  sent(chatId: number | string): FakeMessage[];
  /** Every message of a chat, the player's and the bot's. */
  messages(chatId: number | string): FakeMessage[];
  chats(): ChatSummary[];
  calls(method?: string): ApiCall[];
  callbackAnswers(): CallbackAnswer[];
  /** Queues an update (an absent update_id gets the next one); a webhook gets it next. */
  injectUpdate(update: Omit<Update, 'update_id'> & { update_id?: number }): Update;
  /** The player types `text` in their private chat with the bot. */
  userMessage(player: PlayerRef, text: string): Update;
  /** The player presses an inline button of one of the bot's messages. */
  pressButton(player: PlayerRef, messageId: number, data: string): Update;
  failNext(method: string, spec: FailureSpec): void;
  /** As if the player deleted the message: editing it then fails as on Telegram. */
  deleteMessage(chatId: number | string, messageId: number): void;
  webhook(): WebhookConfig | undefined;
  deliveries(): Delivery[];
  pendingUpdates(): Update[];
}

const copy = <T>(v: T): T => structuredClone(v);

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function parseParams(url: URL, type: string | undefined, body: Buffer): Record<string, unknown> {
  const params: Record<string, unknown> = Object.fromEntries(url.searchParams);
  if (body.length === 0) return params;
  if (type?.includes('application/json')) {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null) Object.assign(params, v);
  } else if (type?.includes('application/x-www-form-urlencoded')) {
    Object.assign(params, Object.fromEntries(new URLSearchParams(body.toString('utf8'))));
  }
  return params;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
  });
  res.end(data);
}

export async function startTelegramFake(opts: TelegramFakeOptions): Promise<TelegramFake> {
  const botId = Number(opts.token.split(':')[0]) || 1_000_000;
  const state = new FakeState(
    {
      id: botId,
      is_bot: true,
      first_name: 'Respawn',
      username: opts.botUsername ?? 'respawn_fake_bot',
    },
    opts.firstUpdateId ?? nextRunUpdateId(),
  );
  let webhook: WebhookConfig | undefined;
  let allowedUpdates: string[] | undefined;
  let poller: ((fresh: boolean) => void) | undefined;
  let stopped = false;
  const deliverer = createWebhookDeliverer({
    state,
    webhook: () => webhook,
    retryMs: opts.webhookRetryMs ?? 500,
  });

  const ctx: MethodContext = {
    state,
    get webhook() {
      return webhook;
    },
    setWebhook(cfg) {
      webhook = cfg;
      poller?.(false);
      deliverer.kick();
    },
    get allowedUpdates() {
      return allowedUpdates;
    },
    setAllowedUpdates(list) {
      allowedUpdates = list;
    },
    waitForUpdates(ms) {
      // Only one getUpdates may wait, as on Telegram: a newer one ends the older with 409.
      poller?.(false);
      if (stopped) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => done(true), ms);
        const done = (fresh: boolean): void => {
          clearTimeout(timer);
          if (poller === done) poller = undefined;
          resolve(fresh);
        };
        poller = done;
      });
    },
  };

  function queued(u: Update): Update {
    poller?.(true);
    deliverer.kick();
    return copy(u);
  }

  function userMessage(player: PlayerRef, text: string): Update {
    state.ensureChat(player.id, player);
    const m = state.addMessage(player.id, 'user', text);
    return queued(
      state.enqueue({ message: state.toApiMessage(m) as unknown as Update['message'] }),
    );
  }

  function pressButton(player: PlayerRef, messageId: number, data: string): Update {
    state.ensureChat(player.id, player);
    const m = state.findMessage(player.id, messageId);
    if (m === undefined) throw new Error(`chat ${player.id} has no message ${messageId}`);
    const update = {
      callback_query: {
        id: state.newCallbackId(),
        from: state.userOf(player.id),
        chat_instance: String(player.id),
        message: state.toApiMessage(m),
        data,
      },
    };
    return queued(state.enqueue(update as unknown as Omit<Update, 'update_id'>));
  }

  function chatSummaries(): ChatSummary[] {
    return [...state.chats.values()].map((c) => {
      const msgs = state.messages.get(c.id) ?? [];
      return {
        id: c.id,
        firstName: c.firstName,
        username: c.username,
        messages: msgs.length,
        last: copy(msgs.at(-1)),
      };
    });
  }

  async function sandboxRoute(req: http.IncomingMessage, url: URL, res: http.ServerResponse) {
    if (url.pathname === '/_fake/chats' && req.method === 'GET') {
      return send(res, 200, { bot: state.bot, chats: chatSummaries() });
    }
    const m = /^\/_fake\/chats\/(-?\d+)\/(messages|callback)$/.exec(url.pathname);
    if (m === null) return send(res, 404, { error: 'not found' });
    const chatId = Number(m[1]);
    if (m[2] === 'messages' && req.method === 'GET') {
      return send(res, 200, { messages: copy(state.messages.get(chatId) ?? []) });
    }
    const body = parseParams(url, 'application/json', await readBody(req));
    const player: PlayerRef = {
      id: chatId,
      ...(typeof body.firstName === 'string' ? { first_name: body.firstName } : {}),
      ...(typeof body.username === 'string' ? { username: body.username } : {}),
    };
    if (m[2] === 'messages' && req.method === 'POST' && typeof body.text === 'string') {
      return send(res, 200, { update: userMessage(player, body.text) });
    }
    if (m[2] === 'callback' && req.method === 'POST' && typeof body.data === 'string') {
      return send(res, 200, { update: pressButton(player, Number(body.messageId), body.data) });
    }
    return send(res, 400, {
      error: 'expected {text} for messages or {messageId, data} for callback',
    });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname.startsWith('/_fake/')) return sandboxRoute(req, url, res);
    const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    if (m === null) return send(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
    if (m[1] !== opts.token) {
      return send(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
    }
    const method = m[2]!;
    let params: Record<string, unknown>;
    try {
      params = parseParams(url, req.headers['content-type'], await readBody(req));
    } catch {
      return send(res, 400, {
        ok: false,
        error_code: 400,
        description: 'Bad Request: invalid JSON',
      });
    }
    const out = await callMethod(ctx, method, params);
    const status = out.ok ? 200 : out.error_code;
    state.calls.push({ method, params, status, at: Date.now() });
    send(res, status, out);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      send(res, 500, {
        ok: false,
        error_code: 500,
        description: `Internal Server Error: ${String(err)}`,
      });
    });
  });
  // Like api.telegram.org, keep idle connections open: grammY's agent keeps its sockets with no
  // idle limit, and Node's default 5 s here made the fake close a socket just as the bot sent
  // on it (ECONNRESET, a retried send) many times a minute under load.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;

  return {
    url: `http://${host}:${port}`,
    token: opts.token,
    bot: state.bot,
    async stop() {
      stopped = true;
      poller?.(false);
      await deliverer.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    sent: (chatId) =>
      copy((state.messages.get(Number(chatId)) ?? []).filter((x) => x.from === 'bot')),
    messages: (chatId) => copy(state.messages.get(Number(chatId)) ?? []),
    chats: chatSummaries,
    calls: (method) => copy(state.calls.filter((c) => method === undefined || c.method === method)),
    callbackAnswers: () => copy(state.callbackAnswers),
    injectUpdate: (update) => queued(state.enqueue(update)),
    userMessage,
    pressButton,
    failNext(method, spec) {
      const list = state.failures.get(method) ?? [];
      list.push({
        code: spec.code,
        retryAfter: spec.retryAfter,
        description:
          spec.description ??
          (spec.code === 429
            ? `Too Many Requests: retry after ${spec.retryAfter ?? 1}`
            : `Error ${spec.code}`),
        remaining: spec.times ?? 1,
      });
      state.failures.set(method, list);
    },
    deleteMessage(chatId, messageId) {
      const msg = state.findMessage(Number(chatId), messageId);
      if (msg !== undefined) msg.deleted = true;
    },
    webhook: () => (webhook === undefined ? undefined : copy(webhook)),
    deliveries: () => copy(deliverer.deliveries),
    pendingUpdates: () => copy(state.pending),
  };
}
