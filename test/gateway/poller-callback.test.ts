/**
 * Long polling answers a pressed inline button (answerCallbackQuery) the way the webhook does
 * in its response, so the player's button stops spinning: once the update is stored in
 * JetStream, exactly once, and never for an update that could not be stored. A text message
 * is not "answered". Against the Bot API fake, with the real grammY client and a real NATS.
 */
import { Api } from 'grammy';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { Streams, ingressSubject } from '../../contracts/index.ts';
import { startTelegramFake, type TelegramFake } from '../../deploy/fakes/telegram/index.ts';
import {
  createTelegramPoller,
  type IngestResult,
  type TelegramPoller,
} from '../../gateway/index.ts';
import { eventually, pauseProcess } from '../support/runtime-env.ts';
import {
  BOT_TOKEN,
  startBus,
  startGateway,
  stored,
  type Bus,
  type RunningTestGateway,
} from './support.ts';

let bus: Bus;
let gw: RunningTestGateway;
let fake: TelegramFake;
let poller: TelegramPoller;
let api: Api;
/** What the gateway's ingest answered the poller, update by update, and when. */
let ingested: { updateId: number | undefined; kind: IngestResult['kind']; at: number }[];

beforeAll(async () => {
  bus = await startBus();
  gw = await startGateway(bus);
});
afterAll(async () => {
  await gw?.close();
  await bus?.dispose();
});

beforeEach(async () => {
  ingested = [];
  fake = await startTelegramFake({ token: BOT_TOKEN });
  api = new Api(BOT_TOKEN, { apiRoot: fake.url });
  poller = createTelegramPoller({
    api,
    // The gateway's own ingest, watched: the answer must come after JetStream stored it.
    ingest: async (raw) => {
      const r = await gw.gateway.ingestTelegram(raw);
      ingested.push({
        updateId: 'updateId' in r ? r.updateId : undefined,
        kind: r.kind,
        at: Date.now(),
      });
      return r;
    },
    log: gw.logs.log,
    allowedUpdates: ['message', 'callback_query'],
    timeoutS: 1,
    backoff: { baseMs: 100, maxMs: 200 },
  });
  await poller.start();
});
afterEach(async () => {
  await poller.stop();
  await fake.stop();
});

async function storedCount(updateId: number): Promise<number> {
  const all = await stored(bus.jsm, Streams.ingress.name, ingressSubject('telegram'));
  return all.filter((m) => m.headers['Nats-Msg-Id'] === `tg-${updateId}`).length;
}

/** The bot's menu in chat `player`, so there is a button to press. */
async function menuFor(player: number): Promise<number> {
  const m = await api.sendMessage(player, 'Menu', {
    reply_markup: { inline_keyboard: [[{ text: 'Play', callback_data: 'play' }]] },
  });
  return m.message_id;
}

it('answers a pressed button after its update is stored, exactly once', async () => {
  const player = { id: 8_101, first_name: 'Asha' };
  const press = fake.pressButton(player, await menuFor(player.id), 'play');
  const queryId = press.callback_query!.id;
  await eventually(
    'the button answered',
    () => Promise.resolve(fake.callbackAnswers().length > 0),
    5_000,
  );
  const published = ingested.find((i) => i.updateId === press.update_id);
  expect(published?.kind).toBe('published');
  expect(fake.callbackAnswers()[0]!.at).toBeGreaterThanOrEqual(published!.at);
  expect(await storedCount(press.update_id)).toBe(1);
  // Polling moves past it: nothing fetches it again, so nothing answers it twice; a text
  // message is not a callback query and gets no answer.
  const text = fake.userMessage(player, '/status');
  await eventually(
    'the next update stored',
    async () => (await storedCount(text.update_id)) === 1,
    5_000,
  );
  expect(poller.offset).toBe(text.update_id + 1);
  expect(fake.callbackAnswers().map((a) => a.callbackQueryId)).toEqual([queryId]);
  expect(fake.calls('answerCallbackQuery')).toHaveLength(1);
});

it('does not answer a press that could not be stored, and answers it once NATS is back', async () => {
  const player = { id: 8_102, first_name: 'Ravi' };
  const menu = await menuFor(player.id);
  await pauseProcess(bus.nats.pid);
  let press;
  try {
    press = fake.pressButton(player, menu, 'play');
    const id = press.update_id;
    await eventually(
      'the gateway to fail storing the press',
      () => Promise.resolve(ingested.some((i) => i.kind === 'unavailable')),
      10_000,
    );
    expect(ingested.filter((i) => i.updateId === id)).toEqual([]);
    expect(fake.callbackAnswers()).toEqual([]);
  } finally {
    process.kill(bus.nats.pid, 'SIGCONT');
  }
  const queryId = press.callback_query!.id;
  await eventually(
    'the press stored and answered after NATS is back',
    async () => fake.callbackAnswers().length > 0 && (await storedCount(press.update_id)) === 1,
    15_000,
  );
  const published = ingested.find((i) => i.updateId === press.update_id);
  expect(published?.kind).toBe('published');
  expect(fake.callbackAnswers()[0]!.at).toBeGreaterThanOrEqual(published!.at);
  expect(fake.callbackAnswers().map((a) => a.callbackQueryId)).toEqual([queryId]);
});
