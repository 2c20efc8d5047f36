/**
 * A pull consumer's trouble, as an operator reads it in the log (contracts/consumer-watch.ts),
 * against a real nats-server: a hung server (SIGSTOP) and a durable consumer deleted under a
 * running `consume()` each give a line naming the consumer, and `works again` once messages
 * flow. The Telegram sender says it about its own consumer.
 */
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Streams,
  TELEGRAM_OUT_CONSUMER,
  TelegramSend,
  outTelegramSubject,
  watchConsumer,
} from '../../contracts/index.ts';
import { createTelegramOutbound } from '../../gateway/index.ts';
import { startNats, type NatsServerHandle } from '../harness/nats.ts';
import { BOT_TOKEN, busAndFake, captureLog, senderDeps } from '../gateway/support.ts';
import { eventually, pauseProcess } from '../support/runtime-env.ts';

const STREAM = 'WATCHED';
const CONSUMER = 'watched-worker';

let nats: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ['watched.>'] });
});
afterAll(async () => {
  await nc.close();
  await nats.stop();
});

const lineOf = (lines: Record<string, unknown>[], msg: string) =>
  lines.find((l) => typeof l.msg === 'string' && l.msg === msg);

async function consumeWatched(log: ReturnType<typeof captureLog>['log']) {
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(STREAM, { durable_name: CONSUMER, ack_policy: AckPolicy.Explicit });
  const c = await jetstream(nc).consumers.get(STREAM, CONSUMER);
  const got: string[] = [];
  const watch = watchConsumer(log, { stream: STREAM, consumer: CONSUMER });
  // Heartbeats every second (expires / 2): two missed heartbeats take 2 s.
  const messages = await c.consume({
    max_messages: 8,
    expires: 2_000,
    callback: (m: JsMsg) => {
      watch.delivered();
      got.push(m.string());
      m.ack();
    },
  });
  watch.follow(messages);
  return { messages, got, jsm };
}

describe('watchConsumer', () => {
  it('says once that a hung server sends nothing, and that it works again when it is back', async () => {
    const cap = captureLog();
    const { messages, got, jsm } = await consumeWatched(cap.log);
    try {
      await jetstream(nc).publish('watched.a', 'before');
      await eventually('first message', () => Promise.resolve(got.length === 1), 5_000);
      await pauseProcess(nats.pid);
      await new Promise((r) => setTimeout(r, 5_000));
      process.kill(nats.pid, 'SIGCONT');
      const failed = `deliveries from JetStream consumer ${STREAM}/${CONSUMER} failed`;
      await eventually('the stall is logged', () =>
        Promise.resolve(lineOf(cap.lines, failed) !== undefined),
      );
      const line = lineOf(cap.lines, failed)!;
      expect(line.level).toBe(40);
      expect(line.consumer).toBe(CONSUMER);
      expect(JSON.stringify(line.err)).toMatch(/no message and no heartbeat/);
      // A 5 s hang is one line, not one per missed heartbeat.
      expect(cap.lines.filter((l) => l.msg === failed)).toHaveLength(1);
      await jetstream(nc).publish('watched.a', 'after');
      await eventually('delivered after the hang', () => Promise.resolve(got.includes('after')));
      await eventually('recovery is logged', () =>
        Promise.resolve(
          lineOf(
            cap.lines,
            `deliveries from JetStream consumer ${STREAM}/${CONSUMER} works again`,
          ) !== undefined,
        ),
      );
    } finally {
      await messages.close();
      await jsm.consumers.delete(STREAM, CONSUMER);
    }
  });

  it('logs an error when its durable consumer is deleted, and works again once it is back', async () => {
    const cap = captureLog();
    const { messages, got, jsm } = await consumeWatched(cap.log);
    try {
      await jsm.consumers.delete(STREAM, CONSUMER);
      const failed = `finding JetStream consumer ${STREAM}/${CONSUMER} failed`;
      await eventually('the missing consumer is logged', () =>
        Promise.resolve(lineOf(cap.lines, failed) !== undefined),
      );
      expect(lineOf(cap.lines, failed)!.level).toBe(50);
      expect(JSON.stringify(lineOf(cap.lines, failed)!.err)).toMatch(
        /consumer (not found|deleted)/,
      );
      // Put back as it was (the process's start would): the same consume() picks it up.
      await jsm.consumers.add(STREAM, {
        durable_name: CONSUMER,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
      });
      await jetstream(nc).publish('watched.b', 'back');
      await eventually('delivered once the consumer is back', () =>
        Promise.resolve(got.includes('back')),
      );
      await eventually('recovery is logged', () =>
        Promise.resolve(
          lineOf(cap.lines, `finding JetStream consumer ${STREAM}/${CONSUMER} works again`) !==
            undefined,
        ),
      );
    } finally {
      await messages.close();
      await jsm.consumers.delete(STREAM, CONSUMER).catch(() => undefined);
    }
  });
});

describe('the Telegram sender', () => {
  const env = busAndFake();

  it('logs an error naming its consumer when that consumer is deleted under it', async () => {
    const cap = captureLog();
    const { bus, fake } = env;
    const out = createTelegramOutbound({
      ...senderDeps(bus, fake.url, new Registry()),
      log: cap.log,
      perChatIntervalMs: 0,
      globalPerSecond: 1000,
      secrets: [BOT_TOKEN],
    });
    await out.start();
    try {
      await bus.js.publish(
        outTelegramSubject('7001'),
        TelegramSend.encode({ chatId: '7001', text: 'hello' }),
        { msgID: 'watch-1' },
      );
      await eventually('sent', () => Promise.resolve(fake.sent(7001).length === 1), 10_000);
      await bus.jsm.consumers.delete(Streams.out.name, TELEGRAM_OUT_CONSUMER);
      const failed = `finding JetStream consumer ${Streams.out.name}/${TELEGRAM_OUT_CONSUMER} failed`;
      await eventually('the missing consumer is logged', () =>
        Promise.resolve(lineOf(cap.lines, failed) !== undefined),
      );
      expect(lineOf(cap.lines, failed)!.level).toBe(50);
    } finally {
      await out.stop();
    }
  });
});
