/**
 * The Bot API fake answers the real grammY client as Telegram would: wrong token 401,
 * getUpdates long-polls and confirms by offset, refuses while a webhook is set, edits fail as
 * on Telegram, callbacks carry their message, and the state is readable over HTTP.
 */
import { Api, GrammyError } from 'grammy';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTelegramFake, type TelegramFake } from '../../deploy/fakes/telegram/index.ts';
import { gatewayDlqSubject } from '../../contracts/index.ts';
import { BOT_TOKEN } from './support.ts';

let fake: TelegramFake;
let api: Api;

beforeEach(async () => {
  fake = await startTelegramFake({ token: BOT_TOKEN });
  api = new Api(BOT_TOKEN, { apiRoot: fake.url });
});
afterEach(async () => {
  await fake.stop();
});

async function grammyError(p: Promise<unknown>): Promise<GrammyError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GrammyError) return err;
    throw err;
  }
  throw new Error('expected a GrammyError');
}

describe('Bot API fake', () => {
  it('refuses another token with 401 and identifies the bot to the right one', async () => {
    const other = new Api('999:other', { apiRoot: fake.url });
    expect((await grammyError(other.getMe())).error_code).toBe(401);
    expect((await api.getMe()).username).toBe('respawn_fake_bot');
  });

  it('long-polls getUpdates until an update arrives and forgets updates below the offset', async () => {
    const started = Date.now();
    const poll = api.getUpdates({ timeout: 5 });
    setTimeout(() => fake.userMessage({ id: 10 }, '/start'), 100);
    const [u] = await poll;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(u?.message?.text).toBe('/start');
    expect(u?.message?.entities?.[0]?.type).toBe('bot_command');
    expect(await api.getUpdates({ offset: u!.update_id, timeout: 0 })).toHaveLength(1);
    expect(await api.getUpdates({ offset: u!.update_id + 1, timeout: 0 })).toHaveLength(0);
    expect(fake.pendingUpdates()).toHaveLength(0);
  });

  it('refuses getUpdates with 409 while a webhook is set', async () => {
    await api.setWebhook('http://127.0.0.1:9/hook', { secret_token: 'abc' });
    expect((await grammyError(api.getUpdates({ timeout: 0 }))).error_code).toBe(409);
    await api.deleteWebhook();
    expect(await api.getUpdates({ timeout: 0 })).toEqual([]);
  });

  it('edits like Telegram: not found, not modified, and a real edit', async () => {
    const m = await api.sendMessage(20, 'Starting…');
    const gone = await grammyError(api.editMessageText(20, m.message_id + 100, 'x'));
    expect(gone.description).toContain('message to edit not found');
    const same = await grammyError(api.editMessageText(20, m.message_id, 'Starting…'));
    expect(same.description).toContain('message is not modified');
    await api.editMessageText(20, m.message_id, 'Ready');
    expect(fake.sent(20).map((x) => x.text)).toEqual(['Ready']);
  });

  it('answers the next call with an injected 429 and its retry_after, then normally', async () => {
    fake.failNext('sendMessage', { code: 429, retryAfter: 3 });
    const err = await grammyError(api.sendMessage(30, 'hi'));
    expect(err.error_code).toBe(429);
    expect(err.parameters.retry_after).toBe(3);
    await api.sendMessage(30, 'hi');
    expect(fake.sent(30)).toHaveLength(1);
  });

  it('turns a button press into a callback_query carrying its message, and records the answer', async () => {
    const m = await api.sendMessage(40, 'Menu', {
      reply_markup: { inline_keyboard: [[{ text: 'Play', callback_data: 'play' }]] },
    });
    const u = fake.pressButton({ id: 40 }, m.message_id, 'play');
    expect(u.callback_query?.data).toBe('play');
    expect(u.callback_query?.message?.message_id).toBe(m.message_id);
    await api.answerCallbackQuery(u.callback_query!.id, { text: 'Starting' });
    expect(fake.callbackAnswers()).toMatchObject([{ text: 'Starting' }]);
  });

  it('shows chats and messages over HTTP, and takes a player message there', async () => {
    await api.sendMessage(50, 'Welcome');
    const posted = await fetch(`${fake.url}/_fake/chats/50/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: '/balance' }),
    });
    expect(posted.status).toBe(200);
    const chats = (await (await fetch(`${fake.url}/_fake/chats`)).json()) as {
      chats: { id: number }[];
    };
    expect(chats.chats.map((c) => c.id)).toEqual([50]);
    const msgs = (await (await fetch(`${fake.url}/_fake/chats/50/messages`)).json()) as {
      messages: { from: string; text: string }[];
    };
    expect(msgs.messages.map((x) => [x.from, x.text])).toEqual([
      ['bot', 'Welcome'],
      ['user', '/balance'],
    ]);
    expect(fake.pendingUpdates()).toHaveLength(1);
  });
});

describe('Bot API fake, restarted', () => {
  it('never repeats an update_id of an earlier run, as Telegram never does', async () => {
    const first = fake.userMessage({ id: 10 }, '/start').update_id;
    const second = fake.userMessage({ id: 10 }, '/help').update_id;
    expect(second).toBe(first + 1);
    await fake.stop();
    // A Respawn with a persistent store has seen `first`: a repeat would be dropped as a duplicate.
    fake = await startTelegramFake({ token: BOT_TOKEN });
    expect(fake.userMessage({ id: 10 }, '/start').update_id).toBeGreaterThan(second);
  });

  it('never gives a message_id of an earlier run to a new message', async () => {
    const first = fake.userMessage({ id: 10 }, '/start').message!.message_id;
    const second = fake.userMessage({ id: 10 }, '/help').message!.message_id;
    expect(second).toBe(first + 1);
    await fake.stop();
    // The gateway keeps which message to edit across restarts: a repeated id would edit a stranger.
    const restartedAt = Date.now() * 1_000;
    fake = await startTelegramFake({ token: BOT_TOKEN });
    const again = fake.userMessage({ id: 10 }, '/start').message!.message_id;
    expect(again).toBeGreaterThan(second);
    // Another process knows nothing of this one's ids: it starts after the clock, in µs.
    expect(again).toBeGreaterThanOrEqual(restartedAt);
  });

  it('starts at the update_id it is given', async () => {
    await fake.stop();
    fake = await startTelegramFake({ token: BOT_TOKEN, firstUpdateId: 500 });
    expect(fake.userMessage({ id: 10 }, '/start').update_id).toBe(500);
  });
});

describe('gateway dead-letter subject', () => {
  it('validates its code token', () => {
    expect(gatewayDlqSubject('rejected')).toBe('respawn.dlq.gateway.rejected');
    expect(() => gatewayDlqSubject('a.b')).toThrow();
  });
});
