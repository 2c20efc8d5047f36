/**
 * The Telegram webhook end to end over HTTP, called the way Telegram calls it: an update POSTed
 * to the gateway's webhook with the secret token the bot registered (`setWebhook`), then the
 * ingress router, the session actor or the bot's reply, the sender, and the player's reply at
 * the Bot API fake. Telegram posts an update again until it gets a 200 (a timeout, a lost
 * answer), so the same update posted three times must still be one reply. The composition is
 * `npm start`'s (startLocal): every piece is the real one, the fakes stand for the services.
 */
import type { Update } from 'grammy/types';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LocalRun } from '../../deploy/local/index.ts';
import { TELEGRAM_SECRET_HEADER } from '../../gateway/index.ts';
import { startLocalRun, type LocalTestRun } from '../support/local-run.ts';
import { eventually } from '../support/runtime-env.ts';

let local: LocalTestRun | undefined;
let run: LocalRun;

beforeAll(async () => {
  local = await startLocalRun({ timings: { timerPollMs: 100, perChatIntervalMs: 50 } });
  run = local.run;
}, 60_000);

afterAll(async () => {
  await local?.stop();
});

function fake() {
  if (run.telegram === undefined) throw new Error('the Telegram fake is not running');
  return run.telegram;
}

/** A private-chat text message, shaped as the Bot API sends it (grammY's own `Update` type). */
function textUpdate(updateId: number, userId: number, text: string): Update {
  const command = /^\/\w+/.exec(text)?.[0];
  return {
    update_id: updateId,
    message: {
      message_id: updateId % 100_000,
      date: Math.floor(Date.now() / 1000),
      from: { id: userId, is_bot: false, first_name: 'Kiran', language_code: 'en' },
      chat: { id: userId, type: 'private', first_name: 'Kiran' },
      text,
      ...(command === undefined
        ? {}
        : { entities: [{ type: 'bot_command', offset: 0, length: command.length }] }),
    },
  };
}

/** POSTs to the webhook the gateway registered with the fake, with its secret token. */
async function post(update: Update): Promise<number> {
  const hook = fake().webhook();
  if (hook?.secretToken === undefined) throw new Error('no webhook with a secret is set');
  const res = await fetch(hook.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [TELEGRAM_SECRET_HEADER]: hook.secretToken },
    body: JSON.stringify(update),
  });
  await res.arrayBuffer();
  return res.status;
}

const texts = (chatId: number): string[] =>
  fake()
    .sent(chatId)
    .map((m) => m.text);

it('answers an update posted to the webhook with the reply at the Bot API fake', async () => {
  const user = 7_301;
  expect(await post(textUpdate(930_000_001, user, '/start'))).toBe(200);
  await eventually('the menu at the fake', () =>
    Promise.resolve(texts(user).some((t) => t.startsWith('Welcome to Respawn, Kiran!'))),
  );
  const menu = fake().sent(user)[0]!;
  expect(menu.replyMarkup?.inline_keyboard.flat().map((b) => b.text)).toEqual(
    expect.arrayContaining(['Top up', 'Balance', 'Help']),
  );
});

it('replies once to the same update posted three times', async () => {
  const user = 7_302;
  const start = textUpdate(930_000_101, user, '/start');
  // As Telegram's retries would: one after another, each answered 200.
  for (let i = 0; i < 3; i++) expect(await post(start)).toBe(200);
  // A later update of the same chat is answered after the first one's reply (one chat's
  // messages are sent in order): once its reply is there, a second menu would be too.
  expect(await post(textUpdate(930_000_102, user, '/help'))).toBe(200);
  await eventually('the reply to /help', () =>
    Promise.resolve(texts(user).some((t) => t.startsWith('What I can do:'))),
  );
  await new Promise((r) => setTimeout(r, 500));
  const said = texts(user);
  expect(said.filter((t) => t.startsWith('Welcome to Respawn')).length).toBe(1);
  expect(said.filter((t) => t.startsWith('What I can do:')).length).toBe(1);
  expect(said.length).toBe(2);
});
