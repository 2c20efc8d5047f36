/**
 * Pure parts of the gateway, no server: the pacer's per-chat and overall limits on a virtual
 * clock, constant-time secret checks, Telegram update parsing, and configuration errors that
 * name the variable without echoing a secret.
 */
import { describe, expect, it } from 'vitest';
import { agentToken } from '../../contracts/index.ts';
import {
  agentTokenVerifier,
  createPacer,
  keyboardOf,
  loadGatewayEnv,
  razorpaySignature,
  safeEqual,
} from '../../gateway/index.ts';
import { retryAfterSeconds } from '../../gateway/ratelimit.ts';
import { supersededBy } from '../../gateway/telegram/collapse.ts';
import { callbackAnswer } from '../../gateway/telegram/ingest.ts';
import { parseUpdate } from '../../gateway/telegram/update.ts';
import { virtualClock } from '../support/virtual-clock.ts';

describe('collapsed answers', () => {
  const q = (id: string, collapseKey?: string) => ({
    id,
    send: collapseKey === undefined ? {} : { collapseKey },
  });

  it('finds the newest later answer with the same collapseKey, and nothing else', () => {
    const s1 = q('s1', 'status');
    const news = q('ready');
    const b1 = q('b1', 'balance');
    const s2 = q('s2', 'status');
    const s3 = q('s3', 'status');
    const queue = [s1, news, b1, s2, s3];
    expect(supersededBy(queue, s1)?.id).toBe('s3');
    expect(supersededBy(queue, s2)?.id).toBe('s3');
    expect(supersededBy(queue, s3)).toBeUndefined();
    expect(supersededBy(queue, b1)).toBeUndefined();
    // A message without a key is never superseded, even by one with a key.
    expect(supersededBy(queue, news)).toBeUndefined();
    // An older answer does not supersede a newer one.
    expect(supersededBy([s1, s2], s2)).toBeUndefined();
  });
});

describe('pacer', () => {
  it('lets one chat receive at most one message per interval', async () => {
    const clock = virtualClock();
    const pacer = createPacer({ perChatIntervalMs: 1000, globalPerSecond: 30, clock });
    const times: number[] = [];
    const done = (async () => {
      for (let i = 0; i < 5; i++) {
        await pacer.acquire('42');
        times.push(clock.now());
      }
    })();
    await clock.run();
    await done;
    expect(times).toEqual([0, 1000, 2000, 3000, 4000]);
  });

  it('counts a chat’s interval from when its call came back, so a slow call cannot bunch two arrivals', async () => {
    const clock = virtualClock();
    const pacer = createPacer({ perChatIntervalMs: 1000, globalPerSecond: 30, clock });
    const times: number[] = [];
    const done = (async () => {
      await pacer.acquire('42');
      // The first call takes 300 ms to come back (it may have arrived at its end).
      await clock.sleep(300);
      pacer.sent('42');
      await pacer.acquire('42');
      times.push(clock.now());
      // A fast call does not shorten the interval the turn already set.
      pacer.sent('42');
      await pacer.acquire('42');
      times.push(clock.now());
    })();
    await clock.run();
    await done;
    expect(times).toEqual([1300, 2300]);
  });

  it('keeps the whole bot within the overall rate, in any one-second window', async () => {
    const clock = virtualClock();
    const pacer = createPacer({ perChatIntervalMs: 1000, globalPerSecond: 30, clock });
    const times: number[] = [];
    const all = Promise.all(
      Array.from({ length: 90 }, async (_, i) => {
        await pacer.acquire(String(i));
        times.push(clock.now());
      }),
    );
    await clock.run();
    await all;
    times.sort((a, b) => a - b);
    const inWindow = times.map((t) => times.filter((x) => x >= t && x < t + 1000).length);
    expect(Math.max(...inWindow)).toBeLessThanOrEqual(31);
    // And no slower than the rate allows: 90 sends in about three seconds.
    expect(times.at(-1)).toBeLessThanOrEqual(3000);
  });

  it("holds a chat for a 429's retry_after, longer than its interval, and no other chat", async () => {
    const clock = virtualClock();
    const pacer = createPacer({ perChatIntervalMs: 1000, globalPerSecond: 30, clock });
    const at: Record<string, number> = {};
    const done = (async () => {
      await pacer.acquire('7');
      pacer.holdChat('7', 5000);
      await Promise.all([
        pacer.acquire('7').then(() => (at['7'] = clock.now())),
        pacer.acquire('8').then(() => (at['8'] = clock.now())),
      ]);
    })();
    await clock.run();
    await done;
    expect(at['7']).toBe(5000);
    // Chat 8 waits only for the overall spacing (1000 / 30 ms).
    expect(at['8']).toBeLessThanOrEqual(34);
  });

  it('gives a turn that was not used back to the chat and to the bot', async () => {
    const clock = virtualClock();
    const pacer = createPacer({ perChatIntervalMs: 1000, globalPerSecond: 1, clock });
    const times: number[] = [];
    const done = (async () => {
      await pacer.acquire('42');
      times.push(clock.now());
      await pacer.acquire('42');
      pacer.giveBack('42'); // its message was dropped: the next one need not wait
      await pacer.acquire('42');
      times.push(clock.now());
      await pacer.acquire('42');
      times.push(clock.now());
    })();
    await clock.run();
    await done;
    expect(times).toEqual([0, 1000, 2000]);
  });

  it('gives no token back for a turn others reserved after: their waits counted it spent', async () => {
    const clock = virtualClock();
    const pacer = createPacer({ perChatIntervalMs: 10, globalPerSecond: 1, clock });
    const used: number[] = [];
    const send = async (chat: string, keep: boolean) => {
      await pacer.acquire(chat);
      if (keep) used.push(clock.now());
      else pacer.giveBack(chat);
    };
    // At 0: a sends; b's turn is at 1000, c's at 2000; b's message turns out not needed.
    const first = Promise.all([send('a', true), send('b', false), send('c', true)]);
    // d asks as b gives back: were b's token returned, d would go at 2000 beside c.
    const later = (async () => {
      await clock.sleep(1000);
      await send('d', true);
    })();
    await clock.run();
    await Promise.all([first, later]);
    expect(used).toEqual([0, 2000, 3000]);
  });
});

describe('secrets and signatures', () => {
  it('compares secrets exactly, whatever their lengths', () => {
    expect(safeEqual('s3cret', 's3cret')).toBe(true);
    expect(safeEqual('s3cret', 's3creT')).toBe(false);
    expect(safeEqual('s3cret', 's3cret-longer')).toBe(false);
    expect(safeEqual('', 's3cret')).toBe(false);
  });

  it("computes Razorpay's signature as HMAC-SHA256 hex of the raw body", () => {
    // Value computed independently: printf '{"a":1}' | openssl dgst -sha256 -hmac secret
    expect(razorpaySignature(Buffer.from('{"a":1}'), 'secret')).toBe(
      'aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494',
    );
  });

  it('accepts an agent token only for the VM it was issued to', async () => {
    const verify = agentTokenVerifier('m'.repeat(32));
    const token = agentToken('m'.repeat(32), 'vm-a');
    expect(await verify('vm-a', token)).toBe(true);
    expect(await verify('vm-b', token)).toBe(false);
  });
});

describe('Telegram updates', () => {
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

  it('reads id, type and sender of messages, callbacks and poll answers', () => {
    expect(parseUpdate(enc({ update_id: 1, message: { from: { id: 5 }, text: 'x' } }))).toEqual({
      ok: true,
      facts: { updateId: 1, type: 'message', fromId: '5' },
    });
    expect(
      parseUpdate(enc({ update_id: 2, callback_query: { from: { id: 6 }, data: 'play' } })),
    ).toMatchObject({
      facts: { type: 'callback_query', fromId: '6' },
    });
    expect(parseUpdate(enc({ update_id: 3, poll_answer: { user: { id: 7 } } }))).toMatchObject({
      facts: { type: 'poll_answer', fromId: '7' },
    });
    expect(parseUpdate(enc({ update_id: 4, channel_post: { text: 'x' } }))).toMatchObject({
      facts: { fromId: undefined },
    });
  });

  it('refuses what is not an update', () => {
    expect(parseUpdate(enc({ update_id: -1 })).ok).toBe(false);
    expect(parseUpdate(enc({ update_id: '1' })).ok).toBe(false);
    expect(parseUpdate(enc([1, 2])).ok).toBe(false);
    expect(parseUpdate(new TextEncoder().encode('{')).ok).toBe(false);
  });

  it('turns buttons into an inline keyboard and a url into a link button', () => {
    expect(
      keyboardOf({
        type: 'telegram.send.v1',
        chatId: '1',
        text: 't',
        buttons: [[{ text: 'Stop', data: 'stop' }]],
      }),
    ).toEqual({ inline_keyboard: [[{ text: 'Stop', callback_data: 'stop' }]] });
    expect(keyboardOf({ type: 'telegram.send.v1', chatId: '1', text: 't' })).toBeUndefined();
  });
});

describe('rate-limit answers', () => {
  it("gives Retry-After as the window's remaining whole seconds, or the window without one", () => {
    expect(retryAfterSeconds(7_200, 10)).toBe(8);
    expect(retryAfterSeconds(1, 10)).toBe(1);
    expect(retryAfterSeconds(10_000, 10)).toBe(10);
    expect(retryAfterSeconds(0, 10)).toBe(10);
    expect(retryAfterSeconds(-1, 10)).toBe(10);
    expect(retryAfterSeconds(undefined, 10)).toBe(10);
  });

  it('answers every stored or dropped button press, a rate-limited one with a notice', () => {
    const base = { updateId: 1, callbackQueryId: 'q1' };
    expect(callbackAnswer({ kind: 'published', duplicate: false, ...base })).toEqual({
      callback_query_id: 'q1',
    });
    expect(
      callbackAnswer({ kind: 'dropped', reason: 'player_rate_limited', retryAfterS: 4, ...base }),
    ).toEqual({ callback_query_id: 'q1', text: 'Slow down a little… try again in 4 s.' });
    expect(callbackAnswer({ kind: 'dropped', reason: 'unknown_update_type', ...base })).toEqual({
      callback_query_id: 'q1',
    });
    // Not a button press, or not stored (Telegram delivers it again): nothing to answer.
    expect(callbackAnswer({ kind: 'published', duplicate: false, updateId: 2 })).toBeUndefined();
    expect(
      callbackAnswer({ kind: 'dropped', reason: 'player_rate_limited', updateId: 3 }),
    ).toBeUndefined();
    expect(callbackAnswer({ kind: 'unavailable', message: 'down' })).toBeUndefined();
  });
});

describe('configuration', () => {
  const base = {
    TELEGRAM_BOT_TOKEN: '123:abc',
    TELEGRAM_WEBHOOK_SECRET: 'whsec',
    RAZORPAY_WEBHOOK_SECRET: 'rzp',
  };

  it('has working defaults for everything but the secrets', () => {
    const env = loadGatewayEnv(base);
    expect(env.GATEWAY_PORT).toBe(8080);
    expect(env.TELEGRAM_MODE).toBe('webhook');
    expect(env.TELEGRAM_ALLOWED_UPDATES).toEqual([
      'message',
      'edited_message',
      'callback_query',
      'my_chat_member',
    ]);
    expect(env.RATE_LIMIT_IP_EXEMPT).toEqual(['149.154.160.0/20', '91.108.4.0/22']);
  });

  it('names every missing or wrong variable, without echoing secret values', () => {
    let message = '';
    try {
      loadGatewayEnv({
        TELEGRAM_BOT_TOKEN: 'not a token with secret-ish value',
        GATEWAY_PORT: 'eighty',
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('TELEGRAM_BOT_TOKEN');
    expect(message).toContain('TELEGRAM_WEBHOOK_SECRET');
    expect(message).toContain('RAZORPAY_WEBHOOK_SECRET');
    expect(message).toContain('GATEWAY_PORT');
    expect(message).not.toContain('secret-ish');
  });

  it('needs no webhook secret in polling mode', () => {
    const { TELEGRAM_WEBHOOK_SECRET: _, ...rest } = base;
    expect(loadGatewayEnv({ ...rest, TELEGRAM_MODE: 'polling' }).TELEGRAM_MODE).toBe('polling');
  });
});
