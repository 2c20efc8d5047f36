/**
 * The Telegram sender (gateway/telegram/outbound.ts and its parts) under random out messages
 * and a randomly failing Bot API, against a private nats-server and the Bot API fake
 * (deploy/fakes/telegram/). A few chats get plain sends, sends with an editKey (some `fresh`),
 * sends with a collapseKey, and invalid out messages (not JSON, not a TelegramSend, over the
 * size limit, a subject naming another chat), published from a connection of their own as the
 * actors' process would; now and then the player deletes the bot's last message, and the
 * sender may be restarted while messages keep coming (stopped, then started again as the
 * sender lease would start the next one, or with its consumer reset so that every out message
 * is delivered again). Between the sender and the fake sits a proxy that answers each call
 * with the next drawn fault, or success once they run out: a 429 with a retry_after of 0 to
 * 1 s, a 5xx, a refusal (400, 403), or a cut connection. Once everything settled
 * (docs/gateway.md, "Outbound: Telegram sends"):
 *
 * - every valid out message ended exactly once: as a message Telegram accepted (a new one, or
 *   an edit of its editKey's message unless that one was deleted), collapsed (only with a
 *   newer valid one with its collapseKey to the same chat published after it), or
 *   dead-lettered (exactly when Telegram refused one of its calls); none lost, none accepted
 *   twice; every invalid one dead-lettered with its code, never sent;
 * - per chat, what Telegram accepted is in publish order;
 * - a chat's accepted message reached Telegram at least an interval after the one before came
 *   back, and no call to a chat reached it inside the hold its 429 asked for;
 * - the sent store agrees: each out message's outcome and Telegram message, each editKey's
 *   message.
 *
 * Not in the fault mix: a response lost after Telegram accepted the call, which the docs say
 * may double a message ("What remains": sendMessage has no idempotency key). The proxy cuts a
 * connection only before forwarding its request, and grammY's call timeout (500 s) never
 * fires, so "none accepted twice" is exact. A 429's hold is checked within one sender's life:
 * a sender started after another waits one interval before each chat's first message, not for
 * a hold its predecessor was told about, and the docs promise no more. The overall rate is
 * the pacer property test's (set high here).
 *
 * Times are the proxy's, in this process: when a call reached it, and when the fake's answer
 * left it. The proxy lets one call at a time through to the fake, so each gets the answer
 * drawn for it; the calls waiting meanwhile are calls held up on their way.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  HeaderNames,
  Streams,
  TELEGRAM_OUT_CONSUMER,
  TelegramSend,
  gatewayDlqSubject,
  outTelegramSubject,
  type MessageOf,
} from '../../contracts/index.ts';
import { startTelegramFake, type TelegramFake } from '../../deploy/fakes/telegram/index.ts';
import {
  createSentStore,
  createTelegramOutbound,
  type SentStore,
  type TelegramOutbound,
} from '../../gateway/index.ts';
import { BOT_TOKEN, outSettled, senderDeps, startBus, stored, type Bus } from './support.ts';

const INTERVAL_MS = 100;
const CHATS = 3;

type Send = MessageOf<typeof TelegramSend>;

const fault = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('ok' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('flood' as const),
      retryAfterS: fc.constantFrom(0, 0.2, 0.5, 1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('down' as const), code: fc.constantFrom(500, 502) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('refuse' as const), code: fc.constantFrom(400, 403) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('cut' as const),
      afterMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200 })),
    }),
  },
);
type Fault = typeof fault extends fc.Arbitrary<infer T> ? T : never;

const REFUSALS: Record<400 | 403, string> = {
  400: 'Bad Request: chat not found',
  403: 'Forbidden: bot was blocked by the user',
};

/** One Bot API call as the proxy saw it. */
interface Call {
  method: string;
  chat: string;
  text: string;
  fault: Fault;
  /** Which sender made it (a restart starts the next). */
  epoch: number;
  receivedAt: number;
  /** When the fake's answer left the proxy, or the connection was cut. */
  answeredAt: number;
  /** The fake's answer; 0 when cut. */
  status: number;
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

function forward(target: URL, path: string, body: Buffer): Promise<[number, Buffer]> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', 'content-length': body.length };
    const req = http.request(
      { host: target.hostname, port: target.port, path, method: 'POST', agent: false, headers },
      (res) => void readAll(res).then((b) => resolve([res.statusCode ?? 0, b]), reject),
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A proxy to the fake answering each call with the next fault drawn (success once they run
 * out). A cut connection is cut before its request is forwarded: Telegram never saw it.
 */
async function startFaultyApi(fake: TelegramFake) {
  const target = new URL(fake.url);
  let faults: Fault[] = [];
  let one: Promise<unknown> = Promise.resolve();
  const api = {
    url: '',
    calls: [] as Call[],
    epoch: 0,
    reset(next: Fault[]): void {
      faults = [...next];
      api.calls.length = 0;
    },
    close(): Promise<void> {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readAll(req);
    const method = /\/([A-Za-z]+)$/.exec(req.url ?? '')?.[1] ?? '?';
    const params = JSON.parse(body.toString('utf8')) as { chat_id?: unknown; text?: unknown };
    const fault = faults.shift() ?? { kind: 'ok' };
    const call: Call = {
      method,
      chat: String(params.chat_id),
      text: String(params.text),
      fault,
      epoch: api.epoch,
      receivedAt: Date.now(),
      answeredAt: 0,
      status: 0,
    };
    api.calls.push(call);
    if (fault.kind === 'cut') {
      await sleep(fault.afterMs);
      call.answeredAt = Date.now();
      req.socket.destroy();
      return;
    }
    // One call at a time reaches the fake, so the failure set up for it is the one it gets.
    const turn = one.then(async () => {
      if (fault.kind === 'flood') {
        fake.failNext(method, { code: 429, retryAfter: fault.retryAfterS });
      } else if (fault.kind === 'down') {
        fake.failNext(method, { code: fault.code, description: 'Bad Gateway' });
      } else if (fault.kind === 'refuse') {
        fake.failNext(method, { code: fault.code, description: REFUSALS[fault.code] });
      }
      const [status, answer] = await forward(target, req.url ?? '/', body);
      call.status = status;
      call.answeredAt = Date.now();
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': answer.length,
      });
      res.end(answer);
    });
    one = turn.catch(() => undefined);
    await turn;
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });
  // As the fake does: grammY keeps its sockets open with no idle limit.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}

// ---- What a run is made of ----

const gap = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 150 }));
const chat = fc.integer({ min: 0, max: CHATS - 1 });
const step = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      chat,
      editKey: fc.oneof(
        { weight: 2, arbitrary: fc.constant(undefined) },
        { weight: 3, arbitrary: fc.constant('session:s-1') },
        { weight: 1, arbitrary: fc.constant('alloc:s-2') },
      ),
      fresh: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
      collapseKey: fc.oneof(
        { weight: 2, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.constantFrom('status', 'balance') },
      ),
      buttons: fc.boolean(),
      withId: fc.integer({ min: 0, max: 5 }).map((n) => n > 0),
      gapMs: gap,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('invalid' as const),
      chat,
      how: fc.constantFrom(...(['json', 'payload', 'size', 'subject'] as const)),
      withId: fc.boolean(),
      gapMs: gap,
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), chat, gapMs: gap }) },
);
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

const scenario = fc.record({
  steps: fc.array(step, { minLength: 4, maxLength: 20, size: 'max' }),
  faults: fc.array(fault, { maxLength: 30, size: 'max' }),
  restart: fc.option(
    fc.record({
      afterStep: fc.nat({ max: 19 }),
      waitMs: fc.oneof(
        { weight: 3, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: 1, max: 300 }) },
      ),
      resetConsumer: fc.boolean(),
    }),
    { nil: undefined },
  ),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

/** One out message as published. */
interface Published {
  i: number;
  seq: number;
  msgId: string;
  data: Uint8Array;
  /** Valid: what the sender should carry out. */
  send?: Send;
  /** Invalid: the dead-letter code it should get. */
  code?: string;
}

// ---- The run ----

let bus: Bus;
let fake: TelegramFake;
let proxy: Awaited<ReturnType<typeof startFaultyApi>>;
let store: SentStore;
/** The actors' side: out messages come from another process's connection. */
let publisher: NatsConnection;
let runs = 0;
/** What the runs reached, over all of them: the generators', not the sender's, check. */
const seen = { accepted: 0, edited: 0, collapsed: 0, refused: 0, invalid: 0, restarts: 0 };

beforeAll(async () => {
  bus = await startBus();
  fake = await startTelegramFake({ token: BOT_TOKEN });
  proxy = await startFaultyApi(fake);
  store = createSentStore({ nc: bus.nc, jsm: bus.jsm });
  publisher = await connect({ servers: bus.nats.url });
  await store.ensure();
});
afterAll(async () => {
  await publisher.close();
  store.close();
  await proxy.close();
  await fake.stop();
  await bus.dispose();
});

function startSender(pauseFirstMs: number): TelegramOutbound {
  return createTelegramOutbound({
    ...senderDeps(bus, proxy.url, new Registry()),
    perChatIntervalMs: INTERVAL_MS,
    globalPerSecond: 1000,
    secrets: [BOT_TOKEN],
    backoff: { baseMs: 50, maxMs: 200 },
    pauseFirstMs,
  });
}

const encoder = new TextEncoder();

async function publish(
  run: number,
  i: number,
  s: Exclude<Step, { kind: 'delete' }>,
  chatIds: string[],
): Promise<Published> {
  const chatId = chatIds[s.chat]!;
  const text = `run ${run} message ${i}`;
  let data: Uint8Array;
  let send: Send | undefined;
  let code: string | undefined;
  if (s.kind === 'send') {
    send = {
      type: TelegramSend.type,
      chatId,
      text,
      ...(s.editKey === undefined ? {} : { editKey: s.editKey }),
      ...(s.editKey !== undefined && s.fresh ? { fresh: true as const } : {}),
      ...(s.collapseKey === undefined ? {} : { collapseKey: s.collapseKey }),
      ...(s.buttons ? { buttons: [[{ text: 'Status', data: 'status' }]] } : {}),
    };
    data = TelegramSend.encode(send);
  } else if (s.how === 'json') {
    data = encoder.encode(`{"type":"telegram.send.v1","chatId":"${chatId}","text":"${text}"`);
    code = ErrorCodes.invalidJson;
  } else if (s.how === 'payload') {
    data = encoder.encode(JSON.stringify({ type: TelegramSend.type, chatId, text: '' }));
    code = ErrorCodes.invalidPayload;
  } else if (s.how === 'size') {
    const pad = 'x'.repeat(70_000);
    data = encoder.encode(JSON.stringify({ type: TelegramSend.type, chatId, text, pad }));
    code = ErrorCodes.payloadTooLarge;
  } else {
    // A valid TelegramSend for the next chat, published to this one's subject.
    data = TelegramSend.encode({ chatId: chatIds[(s.chat + 1) % CHATS]!, text });
    code = ErrorCodes.badSubject;
  }
  const withId = s.withId ? `out-prop-${run}-${i}` : undefined;
  const ack = await jetstream(publisher).publish(
    outTelegramSubject(chatId),
    data,
    withId === undefined ? {} : { msgID: withId },
  );
  return {
    i,
    seq: ack.seq,
    msgId: withId ?? `seq-${ack.seq}`,
    data,
    ...(send === undefined ? {} : { send }),
    ...(code === undefined ? {} : { code }),
  };
}

async function play(s: Scenario): Promise<void> {
  const run = ++runs;
  const chatIds = Array.from({ length: CHATS }, (_, c) => String(7_000_000 + run * 10 + c));
  await bus.jsm.streams.purge(Streams.out.name);
  await bus.jsm.streams.purge(Streams.dlq.name);
  proxy.reset(s.faults);
  let sender = startSender(0);
  await sender.start();
  // The sender stops and a new one starts while out messages keep coming, as in a handover.
  const restart = async (r: NonNullable<Scenario['restart']>): Promise<void> => {
    // Without a wait, the stop begins as the message just published is being delivered.
    if (r.waitMs > 0) await sleep(r.waitMs);
    await sender.stop();
    if (r.resetConsumer) await bus.jsm.consumers.delete(Streams.out.name, TELEGRAM_OUT_CONSUMER);
    proxy.epoch++;
    seen.restarts++;
    // As the sender lease does for a sender taking over: each chat's pace holds.
    sender = startSender(INTERVAL_MS);
    await sender.start();
  };
  let restarted: Promise<void> | undefined;
  const published: Published[] = [];
  try {
    for (const [i, st] of s.steps.entries()) {
      if (st.gapMs > 0) await sleep(st.gapMs);
      if (st.kind === 'delete') {
        const last = fake.sent(chatIds[st.chat]!).at(-1);
        if (last !== undefined) fake.deleteMessage(last.chatId, last.messageId);
      } else {
        published.push(await publish(run, i, st, chatIds));
      }
      if (s.restart?.afterStep === i) restarted = restart(s.restart);
    }
    await restarted;
    await outSettled(bus, 40_000);
  } finally {
    await restarted?.catch(() => undefined);
    await sender.stop();
  }
  await check(published, chatIds);
}

// ---- What must hold ----

interface Accepted {
  messageId: number;
  /** 0: it arrived as a new message; n > 0: as the n-th edit of that message. */
  version: number;
}

async function check(published: Published[], chatIds: string[]): Promise<void> {
  const valid = published.filter((p) => p.send !== undefined);
  const byText = new Map(valid.map((p) => [p.send!.text, p]));
  const calls = proxy.calls.filter((c) => chatIds.includes(c.chat));
  const ok = calls.filter((c) => c.status === 200);

  // What Telegram holds: every version of every bot message, each an accepted call.
  const accepted = new Map<number, Accepted[]>();
  const deleted = new Set<number>();
  for (const m of chatIds.flatMap((c) => fake.sent(c))) {
    if (m.deleted) deleted.add(m.messageId);
    for (const [version, text] of [...m.edits.map((e) => e.text), m.text].entries()) {
      const p = byText.get(text);
      expect(p, `Telegram holds ${text}, no valid out message`).toBeDefined();
      accepted.set(p!.i, [...(accepted.get(p!.i) ?? []), { messageId: m.messageId, version }]);
    }
  }
  expect(ok.length, 'calls answered 200 against versions Telegram holds').toBe(
    [...accepted.values()].flat().length,
  );

  await checkOutcomes(published, accepted, calls);
  for (const c of chatIds) checkPace(c, calls, byText);
  await checkEditKeys(valid, accepted, deleted);
}

const name = (p: Published): string => `message ${p.i} ${JSON.stringify(p.send ?? p.code)}`;

/** Each out message ended once, as it may: accepted, collapsed, or dead-lettered. */
async function checkOutcomes(
  published: Published[],
  accepted: Map<number, Accepted[]>,
  calls: Call[],
): Promise<void> {
  const dead = await stored(bus.jsm, Streams.dlq.name);
  const deadFor = (p: Published) =>
    dead.filter((d) => d.headers[HeaderNames.dlqStreamSeq] === String(p.seq));
  const expectDeadLetter = (p: Published, code: string): void => {
    const d = deadFor(p);
    expect(
      d.map((x) => x.subject),
      `${name(p)}: its dead letters`,
    ).toEqual([gatewayDlqSubject(code)]);
    expect(Buffer.from(d[0]!.data).equals(Buffer.from(p.data)), 'the original payload').toBe(true);
  };
  for (const p of published) {
    const rec = await store.settledFor(p.msgId);
    const send = p.send;
    if (send === undefined) {
      seen.invalid++;
      expect(rec, `${name(p)}: its record`).toEqual({ outcome: 'dead_lettered', at: rec?.at });
      expectDeadLetter(p, p.code!);
      continue;
    }
    const got = accepted.get(p.i) ?? [];
    const refused = calls.some((c) => c.fault.kind === 'refuse' && c.text === send.text);
    expect(got.length, `${name(p)}: accepted ${got.length} times`).toBeLessThanOrEqual(1);
    if (got.length === 1) {
      seen.accepted++;
      if (got[0]!.version > 0) seen.edited++;
      expect(rec, `${name(p)}: its record`).toMatchObject({
        outcome: 'sent',
        chatId: send.chatId,
        messageId: got[0]!.messageId,
      });
      expect(refused, `${name(p)}: accepted after a refusal`).toBe(false);
      expect(deadFor(p), `${name(p)}: accepted and dead-lettered`).toEqual([]);
    } else if (rec?.outcome === 'collapsed') {
      seen.collapsed++;
      expect(rec.chatId).toBe(send.chatId);
      const newer = published.some(
        (q) =>
          q.i > p.i &&
          q.send?.chatId === send.chatId &&
          send.collapseKey !== undefined &&
          q.send.collapseKey === send.collapseKey,
      );
      expect(newer, `${name(p)}: collapsed, no newer one with its collapseKey`).toBe(true);
      expect(deadFor(p), `${name(p)}: collapsed and dead-lettered`).toEqual([]);
    } else {
      expect(rec, `${name(p)}: lost (not accepted, collapsed or dead-lettered)`).toMatchObject({
        outcome: 'dead_lettered',
        chatId: send.chatId,
      });
      seen.refused++;
      expect(refused, `${name(p)}: dead-lettered, never refused`).toBe(true);
      expectDeadLetter(p, ErrorCodes.rejected);
    }
  }
  expect(dead.length, 'dead letters of nothing published').toBe(
    published.filter((p) => deadFor(p).length > 0).length,
  );
}

/**
 * A chat's accepted calls in publish order, each an interval after the one before came back;
 * no call inside a hold a 429 asked for (of the same sender: see the header).
 */
function checkPace(chat: string, calls: Call[], byText: Map<string, Published>): void {
  const ok = calls.filter((x) => x.chat === chat && x.status === 200);
  const order = ok.map((x) => byText.get(x.text)?.i ?? -1);
  expect(order, `chat ${chat}: accepted out of publish order`).toEqual(
    [...order].sort((x, y) => x - y),
  );
  for (let n = 1; n < ok.length; n++) {
    expect(
      ok[n]!.receivedAt - ok[n - 1]!.answeredAt,
      `chat ${chat}: accepted call ${n} too soon`,
    ).toBeGreaterThanOrEqual(INTERVAL_MS);
  }
  const all = calls.filter((x) => x.chat === chat);
  for (const [n, x] of all.entries()) {
    if (x.fault.kind !== 'flood') continue;
    const next = all.slice(n + 1).find((y) => y.epoch === x.epoch);
    if (next === undefined) continue;
    expect(
      next.receivedAt - x.answeredAt,
      `chat ${chat}: a call inside a hold of ${x.fault.retryAfterS} s`,
    ).toBeGreaterThanOrEqual(x.fault.retryAfterS * 1000);
  }
}

/**
 * A send with an editKey edits the message of the last one accepted before it, unless it is
 * `fresh`, the first, or that message was deleted; the store names the last one's message.
 */
async function checkEditKeys(
  valid: Published[],
  accepted: Map<number, Accepted[]>,
  deleted: Set<number>,
): Promise<void> {
  const lastBefore = (i: number, chatId: string, key: string): number | undefined => {
    const q = valid
      .filter((x) => x.i < i && x.send!.chatId === chatId && x.send!.editKey === key)
      .filter((x) => accepted.has(x.i))
      .at(-1);
    return q === undefined ? undefined : accepted.get(q.i)![0]!.messageId;
  };
  for (const p of valid) {
    const a = accepted.get(p.i)?.[0];
    const { chatId, editKey, fresh } = p.send!;
    if (a === undefined) continue;
    const target = editKey === undefined ? undefined : lastBefore(p.i, chatId, editKey);
    if (target === undefined || fresh === true) {
      expect(a.version, `${name(p)}: not a new message`).toBe(0);
    } else if (!deleted.has(target)) {
      expect(a.messageId, `${name(p)}: not an edit of its key's message`).toBe(target);
    }
  }
  const keys = new Set(valid.flatMap((p) => (p.send!.editKey ? [p.send!.editKey] : [])));
  for (const c of new Set(valid.map((p) => p.send!.chatId))) {
    for (const key of keys) {
      expect(await store.editTarget(c, key), `chat ${c}: the message of ${key}`).toBe(
        lastBefore(Infinity, c, key),
      );
    }
  }
}

describe('the Telegram sender under random out messages and Bot API failures', () => {
  it('settles every out message once, in order, paced, and records what happened', async () => {
    await fc.assert(fc.asyncProperty(scenario, play), { numRuns: 20, endOnFailure: true });
    for (const k of ['accepted', 'edited', 'refused', 'invalid', 'restarts'] as const) {
      expect(seen[k], `runs that reached ${k}`).toBeGreaterThan(0);
    }
  }, 150_000);
});
