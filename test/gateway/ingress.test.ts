/**
 * The gateway's edge against a private nats-server and real Redis: Telegram's secret token,
 * Razorpay's signature and VM agents' tokens are checked before anything is published; what
 * passes is stored once in RESPAWN_IN, byte for byte, with the sender's id as Nats-Msg-Id.
 */
import { Api } from 'grammy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentReport, Streams, agentToken, ingressSubject } from '../../contracts/index.ts';
import {
  agentTokenVerifier,
  createTelegramPoller,
  razorpaySignature,
} from '../../gateway/index.ts';
import { startTelegramFake, type TelegramFake } from '../../deploy/fakes/telegram/index.ts';
import { eventually } from '../support/runtime-env.ts';
import {
  BOT_TOKEN,
  RAZORPAY_SECRET,
  TELEGRAM_SECRET,
  counter,
  postUpdate,
  request,
  startBus,
  startGateway,
  stored,
  testConfig,
  textUpdate,
  type Bus,
  type RunningTestGateway,
} from './support.ts';

const AGENT_MASTER = 'agent-master-secret-0123456789abcdef';

let bus: Bus;
let gw: RunningTestGateway;

beforeAll(async () => {
  bus = await startBus();
  gw = await startGateway(bus, { verifyAgent: agentTokenVerifier(AGENT_MASTER) });
});
afterAll(async () => {
  await gw.close();
  await bus.dispose();
});

const inbound = (source: 'telegram' | 'razorpay' | 'agent') =>
  stored(bus.jsm, Streams.ingress.name, ingressSubject(source));

async function withMsgId(source: 'telegram' | 'razorpay' | 'agent', msgId: string) {
  return (await inbound(source)).filter((m) => m.headers['Nats-Msg-Id'] === msgId);
}

describe('Telegram webhook', () => {
  it('refuses a wrong or missing secret token with 401 and publishes nothing', async () => {
    const before = (await inbound('telegram')).length;
    const wrong = await postUpdate(gw.url, textUpdate(1001, 7, '/start'), { secret: 'nope' });
    const missing = await postUpdate(gw.url, textUpdate(1002, 7, '/start'), { secret: '' });
    expect(wrong.status).toBe(401);
    expect(missing.status).toBe(401);
    expect((await inbound('telegram')).length).toBe(before);
    expect(
      await counter(gw.registry, 'respawn_gateway_rejections_total', { reason: 'bad_secret' }),
    ).toBe(2);
    expect(gw.logs.text()).not.toContain(TELEGRAM_SECRET);
  });

  it('stores an update posted three times exactly once, unchanged, with Nats-Msg-Id tg-<update_id>', async () => {
    // Spacing and key order as a client might send them: the bytes must survive as they are.
    const body = `{"update_id": 2001,  "message": {"message_id": 5, "date": 1700000000, "chat": {"id": 42, "type": "private"}, "from": {"id": 42, "is_bot": false, "first_name": "Asha"}, "text": "/play"}}`;
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await postUpdate(gw.url, body));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.map((a) => (a.body as { duplicate: boolean }).duplicate)).toEqual([
      false,
      true,
      true,
    ]);
    const msgs = await withMsgId('telegram', 'tg-2001');
    expect(msgs).toHaveLength(1);
    expect(Buffer.from(msgs[0]!.data).toString('utf8')).toBe(body);
  });

  it('answers 400 with a clear error and a log line for bad JSON or a missing update_id, publishing nothing', async () => {
    const before = (await inbound('telegram')).length;
    const badJson = await postUpdate(gw.url, '{"update_id": 3001, "message": ');
    const noId = await postUpdate(gw.url, { message: { text: 'hi' } });
    expect(badJson.status).toBe(400);
    expect(badJson.body).toMatchObject({ error: 'invalid_json' });
    expect(noId.status).toBe(400);
    expect(noId.body).toMatchObject({ error: 'invalid_body' });
    expect((noId.body as { message: string }).message).toContain('update_id');
    expect((await inbound('telegram')).length).toBe(before);
    const reasons = gw.logs.lines
      .filter((l) => l.msg === 'telegram update rejected')
      .map((l) => l.reason);
    expect(reasons).toEqual(expect.arrayContaining(['invalid_json', 'invalid_body']));
  });

  it('answers 413 to an oversized body and 415 to a non-JSON content type, publishing nothing', async () => {
    const before = (await inbound('telegram')).length;
    const huge = JSON.stringify({ ...textUpdate(4001, 7, 'x'), pad: 'x'.repeat(70_000) });
    const big = await postUpdate(gw.url, huge);
    const form = await request(gw.url, '/telegram/webhook', {
      body: 'update_id=4002',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-telegram-bot-api-secret-token': TELEGRAM_SECRET,
      },
    });
    expect(big.status).toBe(413);
    expect(form.status).toBe(415);
    expect((await inbound('telegram')).length).toBe(before);
    expect(
      await counter(gw.registry, 'respawn_gateway_rejections_total', { reason: 'body_too_large' }),
    ).toBe(1);
  });

  it('checks content type and size before the secret token (fastify parses before the handler)', async () => {
    const before = (await inbound('telegram')).length;
    const text = await request(gw.url, '/telegram/webhook', {
      body: JSON.stringify(textUpdate(4101, 7, '/start')),
      headers: { 'content-type': 'text/plain', 'x-telegram-bot-api-secret-token': 'nope' },
    });
    // Declared larger than the limit: refused from Content-Length, before any byte is read.
    const big = await postUpdate(
      gw.url,
      JSON.stringify({ ...textUpdate(4102, 7, 'x'), pad: 'x'.repeat(2 * 1024 * 1024) }),
      { secret: 'nope' },
    );
    expect(text.status).toBe(415);
    expect(big.status).toBe(413);
    expect((await inbound('telegram')).length).toBe(before);
  });

  it('answers a pressed button in the webhook response so it stops spinning, and stores it once', async () => {
    const before = (await inbound('telegram')).length;
    const update = {
      update_id: 5101,
      callback_query: {
        id: 'cbq-77',
        from: { id: 77, is_bot: false, first_name: 'P' },
        chat_instance: 'ci',
        data: 'play',
        message: { message_id: 9, date: 1, chat: { id: 77, type: 'private' } },
      },
    };
    const first = await postUpdate(gw.url, update);
    const again = await postUpdate(gw.url, update);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ method: 'answerCallbackQuery', callback_query_id: 'cbq-77' });
    expect(again.body).toEqual({ method: 'answerCallbackQuery', callback_query_id: 'cbq-77' });
    expect((await inbound('telegram')).length).toBe(before + 1);
  });

  it('accepts an update of a type the bot does not use with 200 (no retry) and drops it', async () => {
    const before = (await inbound('telegram')).length;
    const r = await postUpdate(gw.url, {
      update_id: 5001,
      poll: { id: 'p', question: 'q', options: [] },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ dropped: 'unknown_update_type' });
    expect((await inbound('telegram')).length).toBe(before);
  });

  it('stores an update the Bot API fake delivers to the webhook set through grammY', async () => {
    const fake: TelegramFake = await startTelegramFake({ token: BOT_TOKEN });
    try {
      const api = new Api(BOT_TOKEN, { apiRoot: fake.url });
      await api.setWebhook(`${gw.url}/telegram/webhook`, {
        secret_token: TELEGRAM_SECRET,
        allowed_updates: ['message', 'callback_query'],
      });
      const update = fake.userMessage({ id: 777, first_name: 'Ravi' }, '/start');
      await eventually(
        'the update is stored',
        async () => (await withMsgId('telegram', `tg-${update.update_id}`)).length === 1,
        5_000,
      );
      const [m] = await withMsgId('telegram', `tg-${update.update_id}`);
      expect(JSON.parse(Buffer.from(m!.data).toString('utf8'))).toEqual(update);
      expect(fake.deliveries().map((d) => d.status)).toEqual([200]);
    } finally {
      await fake.stop();
    }
  });
});

describe('Razorpay webhook', () => {
  const event = (id: string) =>
    JSON.stringify({
      entity: 'event',
      event: 'payment.captured',
      payload: { payment: { entity: { id, amount: 50_000 } } },
    });
  const post = (body: string, headers: Record<string, string>) =>
    request(gw.url, '/razorpay/webhook', { body, headers });

  it('stores a correctly signed event once per x-razorpay-event-id', async () => {
    const body = event('pay_1');
    const headers = {
      'x-razorpay-signature': razorpaySignature(Buffer.from(body), RAZORPAY_SECRET),
      'x-razorpay-event-id': 'evt_A1',
    };
    const first = await post(body, headers);
    const again = await post(body, headers);
    expect([first.status, again.status]).toEqual([200, 200]);
    const msgs = await withMsgId('razorpay', 'rzp-evt_A1');
    expect(msgs).toHaveLength(1);
    expect(Buffer.from(msgs[0]!.data).toString('utf8')).toBe(body);
  });

  it('refuses a wrong signature and a tampered body with 401, logging neither secret nor signature', async () => {
    const before = (await inbound('razorpay')).length;
    const body = event('pay_2');
    const goodSig = razorpaySignature(Buffer.from(body), RAZORPAY_SECRET);
    const wrongKey = razorpaySignature(Buffer.from(body), 'another secret');
    const tampered = body.replace('50000', '5000000');
    const r1 = await post(body, {
      'x-razorpay-signature': wrongKey,
      'x-razorpay-event-id': 'evt_B1',
    });
    const r2 = await post(tampered, {
      'x-razorpay-signature': goodSig,
      'x-razorpay-event-id': 'evt_B2',
    });
    const r3 = await post(body, { 'x-razorpay-event-id': 'evt_B3' });
    expect([r1.status, r2.status, r3.status]).toEqual([401, 401, 401]);
    expect((await inbound('razorpay')).length).toBe(before);
    expect(
      await counter(gw.registry, 'respawn_gateway_rejections_total', { reason: 'bad_signature' }),
    ).toBe(3);
    const logs = gw.logs.text();
    expect(logs).toContain('X-Razorpay-Signature');
    for (const secret of [RAZORPAY_SECRET, goodSig, wrongKey]) expect(logs).not.toContain(secret);
  });

  it('refuses a signed event without an event id with 400', async () => {
    const body = event('pay_3');
    const r = await post(body, {
      'x-razorpay-signature': razorpaySignature(Buffer.from(body), RAZORPAY_SECRET),
    });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: 'missing_event_id' });
  });
});

describe('VM agent reports', () => {
  const report = (id: string, vmName: string) =>
    Buffer.from(
      AgentReport.encode({
        id,
        vmName,
        sessionId: 's-42',
        playerId: '42',
        kind: 'heartbeat',
        at: '2025-01-01T10:00:00.000Z',
      }),
    );

  it("stores a report carrying its VM's token, once per report id", async () => {
    const body = report('r-1', 'vm-s-42-1');
    const headers = { 'x-respawn-agent-token': agentToken(AGENT_MASTER, 'vm-s-42-1') };
    const a = await request(gw.url, '/agent/report', { body, headers });
    const b = await request(gw.url, '/agent/report', { body, headers });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(await withMsgId('agent', 'agent-r-1')).toHaveLength(1);
  });

  it("refuses a missing token, a wrong one, and another VM's token with 401", async () => {
    const before = (await inbound('agent')).length;
    const body = report('r-2', 'vm-s-42-1');
    const none = await request(gw.url, '/agent/report', { body });
    const wrong = await request(gw.url, '/agent/report', {
      body,
      headers: { 'x-respawn-agent-token': 'guess' },
    });
    const other = await request(gw.url, '/agent/report', {
      body,
      headers: { 'x-respawn-agent-token': agentToken(AGENT_MASTER, 'vm-s-43-1') },
    });
    expect([none.status, wrong.status, other.status]).toEqual([401, 401, 401]);
    expect((await inbound('agent')).length).toBe(before);
  });
  it('refuses a report that is not an agent.report.v1 with 400, even with a valid token', async () => {
    const before = (await inbound('agent')).length;
    const r = await request(gw.url, '/agent/report', {
      body: JSON.stringify({ id: 'r-3', vmName: 'vm-s-42-1', kind: 'reboot' }),
      headers: { 'x-respawn-agent-token': agentToken(AGENT_MASTER, 'vm-s-42-1') },
    });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: 'invalid_body' });
    expect((await inbound('agent')).length).toBe(before);
  });
});

describe('health and metrics', () => {
  it('reports ready with NATS and Redis named, and exposes Prometheus counters', async () => {
    const health = await request(gw.url, '/healthz');
    const ready = await request(gw.url, '/readyz');
    expect(health.status).toBe(200);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      ok: true,
      degraded: false,
      checks: { nats: { ok: true }, redis: { ok: true, detail: 'PONG' } },
    });
    const metrics = await request(gw.url, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain(
      'respawn_gateway_webhook_requests_total{source="telegram",outcome="published"}',
    );
    expect(metrics.text).toContain('respawn_gateway_publish_seconds_bucket');
  });
});

describe('rate limits', () => {
  it('answers 429 to a flooding IP while another IP is served', async () => {
    const limited = await startGateway(bus, {
      config: testConfig({
        rateLimit: { ...testConfig().rateLimit, ip: { points: 5, durationS: 60 } },
      }),
    });
    try {
      const flood = [];
      for (let i = 0; i < 8; i++)
        flood.push(
          await postUpdate(limited.url, textUpdate(6000 + i, 8, 'x'), { from: '127.0.0.2' }),
        );
      const other = await postUpdate(limited.url, textUpdate(6100, 9, 'y'), { from: '127.0.0.3' });
      expect(flood.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
      expect(flood[0]!.headers['retry-after']).toBeUndefined();
      // What is left of the 60 s window, in whole seconds.
      for (const r of flood.slice(5)) {
        const retryAfter = Number(r.headers['retry-after']);
        expect(Number.isInteger(retryAfter)).toBe(true);
        expect(retryAfter).toBeGreaterThanOrEqual(59);
        expect(retryAfter).toBeLessThanOrEqual(60);
      }
      expect(other.status).toBe(200);
      expect(
        await counter(limited.registry, 'respawn_gateway_rejections_total', {
          reason: 'ip_rate_limited',
        }),
      ).toBe(3);
      expect(await withMsgId('telegram', 'tg-6005')).toHaveLength(0);
    } finally {
      await limited.close();
    }
  });

  it('drops (with 200) the updates of a flooding player while another player is served', async () => {
    const limited = await startGateway(bus, {
      config: testConfig({
        rateLimit: { ...testConfig().rateLimit, player: { points: 3, durationS: 60 } },
      }),
    });
    try {
      const flood = [];
      for (let i = 0; i < 6; i++)
        flood.push(await postUpdate(limited.url, textUpdate(7000 + i, 66, '/play')));
      const other = await postUpdate(limited.url, textUpdate(7100, 67, '/play'));
      expect(flood.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(flood.slice(3).map((r) => r.body)).toEqual(
        Array(3).fill({ ok: true, dropped: 'player_rate_limited' }),
      );
      expect(other.status).toBe(200);
      const ids = (await inbound('telegram')).map((m) => m.headers['Nats-Msg-Id']);
      expect(ids).toEqual(expect.arrayContaining(['tg-7000', 'tg-7001', 'tg-7002', 'tg-7100']));
      expect(ids).not.toEqual(expect.arrayContaining(['tg-7003']));
      expect(
        await counter(limited.registry, 'respawn_gateway_rejections_total', {
          reason: 'player_rate_limited',
        }),
      ).toBe(3);
    } finally {
      await limited.close();
    }
  });
});

describe('rate-limited button presses', () => {
  const pressUpdate = (updateId: number, player: number) => ({
    update_id: updateId,
    callback_query: {
      id: `cbq-${updateId}`,
      from: { id: player, is_bot: false, first_name: 'P' },
      chat_instance: 'ci',
      data: 'status',
      message: { message_id: 9, date: 1, chat: { id: player, type: 'private' } },
    },
  });

  it('answers a press over the player limit in the webhook response with a "slow down" notice, storing nothing', async () => {
    const limited = await startGateway(bus, {
      config: testConfig({
        rateLimit: { ...testConfig().rateLimit, player: { points: 2, durationS: 30 } },
      }),
    });
    try {
      const answers = [];
      for (let i = 0; i < 3; i++)
        answers.push(await postUpdate(limited.url, pressUpdate(7500 + i, 75)));
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(answers[0]!.body).toEqual({
        method: 'answerCallbackQuery',
        callback_query_id: 'cbq-7500',
      });
      const slowed = answers[2]!.body as Record<string, unknown>;
      expect(slowed).toMatchObject({
        method: 'answerCallbackQuery',
        callback_query_id: 'cbq-7502',
      });
      expect(slowed.text).toMatch(/^Slow down a little… try again in (29|30) s\.$/);
      expect(await withMsgId('telegram', 'tg-7502')).toHaveLength(0);
      expect(
        await counter(limited.registry, 'respawn_gateway_rejections_total', {
          reason: 'player_rate_limited',
        }),
      ).toBe(1);
    } finally {
      await limited.close();
    }
  });

  it('answers a press over the player limit in long polling too, with the same notice', async () => {
    const limited = await startGateway(bus, {
      config: testConfig({
        rateLimit: { ...testConfig().rateLimit, player: { points: 1, durationS: 30 } },
      }),
    });
    const fake = await startTelegramFake({ token: BOT_TOKEN });
    const api = new Api(BOT_TOKEN, { apiRoot: fake.url });
    const poller = createTelegramPoller({
      api,
      ingest: limited.gateway.ingestTelegram,
      log: limited.logs.log,
      allowedUpdates: ['message', 'callback_query'],
      timeoutS: 0,
      backoff: { baseMs: 50, maxMs: 100 },
    });
    try {
      const player = { id: 7_601, first_name: 'Asha' };
      const menu = await api.sendMessage(player.id, 'Menu', {
        reply_markup: { inline_keyboard: [[{ text: 'Status', callback_data: 'status' }]] },
      });
      const first = fake.pressButton(player, menu.message_id, 'status');
      const second = fake.pressButton(player, menu.message_id, 'status');
      await poller.start();
      await eventually(
        'both presses answered',
        () => Promise.resolve(fake.callbackAnswers().length === 2),
        5_000,
      );
      const byId = new Map(fake.callbackAnswers().map((a) => [a.callbackQueryId, a.text]));
      expect(byId.get(first.callback_query!.id)).toBeUndefined();
      expect(byId.get(second.callback_query!.id)).toMatch(/^Slow down a little/);
      expect(await withMsgId('telegram', `tg-${second.update_id}`)).toHaveLength(0);
    } finally {
      await poller.stop();
      await fake.stop();
      await limited.close();
    }
  });
});

describe('long polling', () => {
  it('publishes each fetched update like the webhook does (same Nats-Msg-Id) and confirms the offset', async () => {
    const fake = await startTelegramFake({ token: BOT_TOKEN });
    const api = new Api(BOT_TOKEN, { apiRoot: fake.url });
    // A webhook left over from another mode would make getUpdates fail with 409.
    await api.setWebhook('http://127.0.0.1:9/unused', { secret_token: TELEGRAM_SECRET });
    const poller = createTelegramPoller({
      api,
      ingest: gw.gateway.ingestTelegram,
      log: gw.logs.log,
      allowedUpdates: ['message', 'callback_query'],
      timeoutS: 1,
    });
    try {
      await poller.start();
      const updates = ['/start', '/play', '/status'].map((t) => fake.userMessage({ id: 555 }, t));
      const ids = updates.map((u) => `tg-${u.update_id}`);
      await eventually(
        'all three updates stored',
        async () => {
          const have = (await inbound('telegram')).map((m) => m.headers['Nats-Msg-Id']);
          return ids.every((id) => have.includes(id));
        },
        5_000,
      );
      // The same update through the webhook is the same message: stored once.
      const again = await postUpdate(gw.url, updates[0]);
      expect(again.body).toMatchObject({ duplicate: true });
      expect(await withMsgId('telegram', ids[0]!)).toHaveLength(1);
      expect(fake.webhook()).toBeUndefined();
      await eventually(
        'offset past the last update',
        () => Promise.resolve(poller.offset === updates[2]!.update_id + 1),
        5_000,
      );
    } finally {
      await poller.stop();
      await fake.stop();
    }
    expect(fake.pendingUpdates()).toEqual([]);
  });
});
