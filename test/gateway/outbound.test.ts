/**
 * Telegram sends from RESPAWN_OUT through the real grammY client to the Bot API fake: paced
 * per chat and in order, 429 retry_after honoured, transient failures retried, status messages
 * edited in place by editKey, nothing sent twice on redelivery, bad messages dead-lettered.
 */
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Api } from 'grammy';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HeaderNames,
  Streams,
  TELEGRAM_OUT_CONSUMER,
  TelegramSend,
  gatewayDlqSubject,
  outTelegramSubject,
  type MessageOf,
} from '../../contracts/index.ts';
import { startTelegramFake, type TelegramFake } from '../../deploy/fakes/telegram/index.ts';
import { createTelegramOutbound, type TelegramOutbound } from '../../gateway/index.ts';
import { eventually } from '../support/runtime-env.ts';
import {
  BOT_TOKEN,
  counter,
  outSettled,
  senderDeps,
  startBus,
  stored,
  type Bus,
} from './support.ts';

const INTERVAL_MS = 150;

let bus: Bus;
let fake: TelegramFake;
let out: TelegramOutbound;
let registry: Registry;
let seq = 0;

function startOutbound(globalPerSecond = 1000): TelegramOutbound {
  registry = new Registry();
  return createTelegramOutbound({
    ...senderDeps(bus, fake.url, registry),
    perChatIntervalMs: INTERVAL_MS,
    globalPerSecond,
    secrets: [BOT_TOKEN],
    backoff: { baseMs: 50, maxMs: 200 },
  });
}

beforeAll(async () => {
  bus = await startBus();
  fake = await startTelegramFake({ token: BOT_TOKEN });
  out = startOutbound();
  await out.start();
});
afterAll(async () => {
  await out.stop();
  await fake.stop();
  await bus.dispose();
});

type Send = Omit<MessageOf<typeof TelegramSend>, 'type'>;

async function send(
  msg: Send,
  opts: { subjectChat?: string; msgId?: string } = {},
): Promise<string> {
  const msgId = opts.msgId ?? `out-test-${++seq}`;
  await bus.js.publish(
    outTelegramSubject(opts.subjectChat ?? msg.chatId),
    TelegramSend.encode(msg),
    {
      msgID: msgId,
    },
  );
  return msgId;
}

const settled = (): Promise<void> => outSettled(bus);

describe('delivery', () => {
  it('sends a TelegramSend as a message with its inline buttons and link', async () => {
    await send({
      chatId: '1001',
      text: 'Your balance is ₹500.00',
      buttons: [
        [
          { text: 'Play', data: 'play' },
          { text: 'Top up', data: 'topup:50000' },
        ],
      ],
      url: 'https://rzp.io/l/abc123',
    });
    await eventually('message arrives', () => Promise.resolve(fake.sent(1001).length === 1), 5_000);
    const [m] = fake.sent(1001);
    expect(m!.text).toBe('Your balance is ₹500.00');
    expect(m!.replyMarkup).toEqual({
      inline_keyboard: [
        [
          { text: 'Play', callback_data: 'play' },
          { text: 'Top up', callback_data: 'topup:50000' },
        ],
        [{ text: 'Open link', url: 'https://rzp.io/l/abc123' }],
      ],
    });
    await settled();
  });

  it('delivers 20 messages to one chat in order, none lost, at most one per interval, without holding up another chat', async () => {
    for (let i = 1; i <= 20; i++) await send({ chatId: '1002', text: `update ${i}` });
    for (let i = 1; i <= 3; i++) await send({ chatId: '1003', text: `other ${i}` });
    await eventually('all 20 arrive', () => Promise.resolve(fake.sent(1002).length === 20), 15_000);
    const sent = fake.sent(1002);
    expect(sent.map((m) => m.text)).toEqual(
      Array.from({ length: 20 }, (_, i) => `update ${i + 1}`),
    );
    const gaps = sent.slice(1).map((m, i) => m.sentAt - sent[i]!.sentAt);
    // The fake stamps arrival; request latency can shift one arrival by a few ms.
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(INTERVAL_MS - 20);
    const other = fake.sent(1003);
    expect(other).toHaveLength(3);
    expect(other[2]!.sentAt).toBeLessThan(sent[5]!.sentAt);
    await settled();
  });

  it('lets many chats wait for the global rate at once without a listener-leak warning', async () => {
    // Each message waiting for the send rate listens on the sender's stop signal; 15 chats
    // at 5 messages/s keep more than Node's default of 10 waiting together.
    await out.stop();
    out = startOutbound(5);
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      await out.start();
      const chats = Array.from({ length: 15 }, (_, i) => 2000 + i);
      for (const c of chats) await send({ chatId: String(c), text: `hello ${c}` });
      await eventually(
        'every chat served',
        () => Promise.resolve(chats.every((c) => fake.sent(c).length === 1)),
        15_000,
      );
      await settled();
    } finally {
      process.off('warning', onWarning);
      await out.stop();
      out = startOutbound();
      await out.start();
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });

  it("honours a 429's retry_after before trying the same message again", async () => {
    fake.failNext('sendMessage', { code: 429, retryAfter: 1 });
    await send({ chatId: '1004', text: 'queued: position 3' });
    await eventually('message arrives', () => Promise.resolve(fake.sent(1004).length === 1), 5_000);
    const calls = fake.calls('sendMessage').filter((c) => Number(c.params.chat_id) === 1004);
    expect(calls.map((c) => c.status)).toEqual([429, 200]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(
      await counter(registry, 'respawn_gateway_telegram_out_total', { outcome: 'rate_limited' }),
    ).toBe(1);
    await settled();
  });

  it('retries a Telegram 5xx until the message is accepted, once', async () => {
    fake.failNext('sendMessage', { code: 502, description: 'Bad Gateway', times: 2 });
    await send({ chatId: '1005', text: 'ready: connect to 10.0.0.4:47989' });
    await eventually('message arrives', () => Promise.resolve(fake.sent(1005).length === 1), 5_000);
    await settled();
    expect(fake.sent(1005)).toHaveLength(1);
  });
});

describe('status messages', () => {
  it('edits the message of an editKey in place, and sends a new one when the old is gone', async () => {
    await send({ chatId: '1006', text: 'Starting (Spot, ₹40/h)…', editKey: 'session:s-1' });
    await eventually('first status', () => Promise.resolve(fake.sent(1006).length === 1), 5_000);
    await send({ chatId: '1006', text: 'Ready: PIN 4821', editKey: 'session:s-1' });
    await eventually(
      'edited in place',
      () => Promise.resolve(fake.sent(1006)[0]?.text === 'Ready: PIN 4821'),
      5_000,
    );
    const [status] = fake.sent(1006);
    expect(fake.sent(1006)).toHaveLength(1);
    expect(status!.edits.map((e) => e.text)).toEqual(['Starting (Spot, ₹40/h)…']);

    // The same content again is not an error (Telegram's "message is not modified").
    await send({ chatId: '1006', text: 'Ready: PIN 4821', editKey: 'session:s-1' });
    await settled();
    expect(fake.sent(1006)).toHaveLength(1);

    fake.deleteMessage(1006, status!.messageId);
    await send({ chatId: '1006', text: 'Stopped: 42 min, ₹28.00', editKey: 'session:s-1' });
    await eventually(
      'a new message replaces the deleted one',
      () => Promise.resolve(fake.sent(1006).length === 2),
      5_000,
    );
    expect(fake.sent(1006)[1]!.text).toBe('Stopped: 42 min, ₹28.00');
    await settled();
  });

  it('sends a fresh one as a new message that takes the editKey over', async () => {
    await send({ chatId: '1010', text: 'Number 3 in line', editKey: 'alloc:s-2:1' });
    await eventually('in line', () => Promise.resolve(fake.sent(1010).length === 1), 5_000);
    await send({ chatId: '1010', text: 'Got a Spot rig', editKey: 'alloc:s-2:1', fresh: true });
    await eventually('news', () => Promise.resolve(fake.sent(1010).length === 2), 5_000);
    await send({ chatId: '1010', text: 'Got an On-Demand rig', editKey: 'alloc:s-2:1' });
    await eventually(
      'the fresh one edited',
      () => Promise.resolve(fake.sent(1010)[1]?.text === 'Got an On-Demand rig'),
      5_000,
    );
    await settled();
    expect(fake.sent(1010).map((m) => m.text)).toEqual([
      'Number 3 in line',
      'Got an On-Demand rig',
    ]);
    expect(fake.sent(1010)[0]!.edits).toEqual([]);
  });
});

describe('collapsed answers', () => {
  it('drops an answer still waiting for its turn when a newer one with its collapseKey is queued, and nothing else', async () => {
    // The chat is held (a 429 of one second) so that everything below queues behind the first.
    fake.failNext('sendMessage', { code: 429, retryAfter: 1 });
    await send({ chatId: '1009', text: 'status 1', collapseKey: 'status' });
    await send({ chatId: '1009', text: 'your rig is ready' });
    await send({ chatId: '1009', text: 'balance ₹10.00', collapseKey: 'balance' });
    await send({ chatId: '1009', text: 'status 2', collapseKey: 'status' });
    await send({ chatId: '1009', text: 'status 3', collapseKey: 'status' });
    await eventually(
      'the newest status arrives',
      () => Promise.resolve(fake.sent(1009).some((m) => m.text === 'status 3')),
      10_000,
    );
    await settled();
    // Order kept; a message without a collapseKey, or with another one, is never dropped.
    expect(fake.sent(1009).map((m) => m.text)).toEqual([
      'your rig is ready',
      'balance ₹10.00',
      'status 3',
    ]);
    expect(
      await counter(registry, 'respawn_gateway_telegram_out_total', { outcome: 'collapsed' }),
    ).toBe(2);
    // Both are recorded as settled: the redelivery test below sends neither.
  });
});

describe('dead letters', () => {
  it('dead-letters an invalid out message, a chat mismatch and a Telegram refusal, and keeps sending', async () => {
    await bus.js.publish(
      outTelegramSubject('1007'),
      new TextEncoder().encode('{"type":"telegram.send.v1"'),
      {
        msgID: 'out-bad-json',
      },
    );
    await send(
      { chatId: '1008', text: 'not for 1007' },
      { subjectChat: '1007', msgId: 'out-mismatch' },
    );
    fake.failNext('sendMessage', {
      code: 403,
      description: 'Forbidden: bot was blocked by the user',
    });
    await send({ chatId: '1007', text: 'you were blocked' }, { msgId: 'out-blocked' });
    await send({ chatId: '1007', text: 'still alive' });
    await eventually(
      'the good message arrives',
      () => Promise.resolve(fake.sent(1007).some((m) => m.text === 'still alive')),
      5_000,
    );
    await settled();
    const dead = await stored(bus.jsm, Streams.dlq.name);
    const byId = new Map(dead.map((d) => [d.headers[HeaderNames.dlqMsgId], d]));
    expect(byId.get('out-bad-json')?.subject).toBe(gatewayDlqSubject('invalid_json'));
    expect(byId.get('out-mismatch')?.subject).toBe(gatewayDlqSubject('bad_subject'));
    const blocked = byId.get('out-blocked');
    expect(blocked?.subject).toBe(gatewayDlqSubject('rejected'));
    expect(blocked?.headers[HeaderNames.dlqReason]).toContain('bot was blocked by the user');
    expect(blocked?.headers[HeaderNames.dlqSubject]).toBe(outTelegramSubject('1007'));
    expect(Buffer.from(blocked!.data).toString('utf8')).toContain('you were blocked');
    expect(fake.sent(1007).map((m) => m.text)).toEqual(['still alive']);
  });
});

describe('a Bot API outage', () => {
  it('warns once for many chats while sends fail, says when they work again, and loses nothing', async () => {
    await settled();
    await out.stop();
    const lines: { level: number; msg: string; chatId?: string; err?: unknown }[] = [];
    const logged = createTelegramOutbound({
      ...senderDeps(bus, fake.url, new Registry()),
      log: pino(
        { level: 'info' },
        { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) },
      ),
      perChatIntervalMs: INTERVAL_MS,
      globalPerSecond: 1000,
      secrets: [BOT_TOKEN],
      backoff: { baseMs: 50, maxMs: 200 },
    });
    await logged.start();
    try {
      // The next 30 sendMessage calls fail, whichever chats they are for: ~3 tries per chat.
      fake.failNext('sendMessage', { code: 502, description: 'Bad Gateway', times: 30 });
      const chats = Array.from({ length: 10 }, (_, i) => 1101 + i);
      for (const c of chats) await send({ chatId: String(c), text: `hello ${c}` });
      await eventually(
        'every chat has its message',
        () => Promise.resolve(chats.every((c) => fake.sent(c).length === 1)),
        15_000,
      );
      await settled();
      expect(chats.map((c) => fake.sent(c).length)).toEqual(chats.map(() => 1));
      const warnings = lines.filter((l) => l.level >= 40);
      expect(warnings.map((l) => l.msg)).toEqual(['telegram send failed']);
      expect(chats.map(String)).toContain(warnings[0]!.chatId);
      expect(String(warnings[0]!.err)).toMatch(/Bad Gateway/);
      const again = lines.filter((l) => l.msg === 'telegram send works again');
      expect(again).toHaveLength(1);
      expect(again[0]).toMatchObject({ level: 30, failures: 30 });
    } finally {
      await logged.stop();
      out = startOutbound();
      await out.start();
    }
  });
});

describe('a second sender', () => {
  it('says at start, as an error, that another sender is consuming', async () => {
    const lines: { level: number; msg: string }[] = [];
    const second = createTelegramOutbound({
      nc: bus.nc,
      js: bus.js,
      jsm: bus.jsm,
      api: new Api(BOT_TOKEN, { apiRoot: fake.url }),
      log: pino(
        { level: 'info' },
        { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) },
      ),
      metricsRegistry: new Registry(),
      perChatIntervalMs: INTERVAL_MS,
      globalPerSecond: 1000,
    });
    await second.start();
    await second.stop();
    const warned = lines.find((l) => l.msg.includes('another Telegram sender is consuming'));
    expect(warned?.level).toBe(50);
    expect(warned?.msg).toContain('TELEGRAM_OUTBOUND=false');
  });
});

describe('a sender that stops', () => {
  it('gives back a message delivered to it as it stops: the next sender sends it first, not ack_wait later', async () => {
    await settled();
    // Published on a connection of its own, whose ack can come back before the sender's
    // connection has read the delivery: the sender stops in between.
    const publisher = await connect({ servers: bus.nats.url });
    try {
      for (let round = 1; round <= 3; round++) {
        const chat = String(1200 + round);
        await jetstream(publisher).publish(
          outTelegramSubject(chat),
          TelegramSend.encode({ chatId: chat, text: 'delivered as it stops' }),
          { msgID: `out-stopping-${round}` },
        );
        await out.stop();
        await send({ chatId: chat, text: 'published after' });
        out = startOutbound();
        await out.start();
        await eventually(
          `round ${round}: both arrive well inside ack_wait`,
          () => Promise.resolve(fake.sent(chat).length === 2),
          5_000,
        );
        expect(fake.sent(chat).map((m) => m.text)).toEqual([
          'delivered as it stops',
          'published after',
        ]);
      }
    } finally {
      await publisher.close();
    }
    await settled();
  });
});

describe('redelivery', () => {
  it('does not send again what was already sent when every out message is delivered again', async () => {
    await settled();
    const callsBefore = fake.calls().filter((c) => c.method !== 'getMe').length;
    const chats = [1001, 1002, 1003, 1006, 1009];
    const sentBefore = chats.map((c) => fake.sent(c).length);
    await out.stop();
    // A reset consumer delivers the whole stream again: same stream sequences, same msg ids.
    await bus.jsm.consumers.delete(Streams.out.name, TELEGRAM_OUT_CONSUMER);
    out = startOutbound();
    await out.start();
    await settled();
    expect(fake.calls().filter((c) => c.method !== 'getMe').length).toBe(callsBefore);
    expect(chats.map((c) => fake.sent(c).length)).toEqual(sentBefore);
    expect(
      await counter(registry, 'respawn_gateway_telegram_out_total', { outcome: 'duplicate' }),
    ).toBeGreaterThanOrEqual(28);
  });
});
