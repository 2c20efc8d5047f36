/**
 * The Telegram pacer under random traffic, on a virtual clock: a few chats, each sending its
 * messages one after another as the sender does (a turn, then the call or a turn given back
 * unused, a 429 holding the chat and the same message tried again), calls taking from nothing
 * to two seconds, chats starting at random moments. Whatever the traffic:
 *
 * - a chat's message goes at least an interval after the previous one came back (Telegram
 *   counts arrivals), and never inside a hold its 429 asked for;
 * - no second holds more messages than the overall rate allows (plus the one in hand);
 * - every message goes, in its chat's order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPacer } from '../../gateway/index.ts';
import { virtualClock } from '../support/virtual-clock.ts';

interface Message {
  /** Its turn turned out not to be needed (a newer answer replaced it). */
  unused: boolean;
  callMs: number;
  /** Telegram answered 429 once, asking to wait this long. */
  retryAfterMs: number | undefined;
}

const message: fc.Arbitrary<Message> = fc.record({
  unused: fc.integer({ min: 0, max: 9 }).map((n) => n < 3),
  callMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2_000 })),
  retryAfterMs: fc.option(fc.integer({ min: 1_000, max: 5_000 }), { freq: 8, nil: undefined }),
});
const chat = fc.record({
  startMs: fc.integer({ min: 0, max: 3_000 }),
  messages: fc.array(message, { minLength: 1, maxLength: 12 }),
});
const traffic = fc.record({
  intervalMs: fc.constantFrom(50, 1_000),
  perSecond: fc.constantFrom(1, 2, 5, 30),
  chats: fc.array(chat, { minLength: 1, maxLength: 8 }),
});

type Traffic = typeof traffic extends fc.Arbitrary<infer T> ? T : never;

interface Turn {
  chat: number;
  message: number;
  at: number;
  back: number;
}

async function play(t: Traffic): Promise<void> {
  const clock = virtualClock();
  const pacer = createPacer({
    perChatIntervalMs: t.intervalMs,
    globalPerSecond: t.perSecond,
    clock,
  });
  const used: Turn[] = [];
  const holds: { chat: number; from: number; until: number }[] = [];
  const sender = async (c: number): Promise<void> => {
    const id = String(c);
    await clock.sleep(t.chats[c]!.startMs);
    for (const [i, m] of t.chats[c]!.messages.entries()) {
      let throttled = m.retryAfterMs;
      for (;;) {
        await pacer.acquire(id);
        if (m.unused) {
          pacer.giveBack(id);
          break;
        }
        const at = clock.now();
        await clock.sleep(m.callMs);
        if (throttled !== undefined) {
          pacer.holdChat(id, throttled);
          holds.push({ chat: c, from: clock.now(), until: clock.now() + throttled });
          throttled = undefined;
          continue;
        }
        pacer.sent(id);
        used.push({ chat: c, message: i, at, back: clock.now() });
        break;
      }
    }
  };
  const done = Promise.all(t.chats.map((_, c) => sender(c)));
  await clock.run();
  await done;

  const wanted = t.chats.flatMap((ch, c) =>
    ch.messages.flatMap((m, i) => (m.unused ? [] : [`${c}:${i}`])),
  );
  expect(used.map((u) => `${u.chat}:${u.message}`).sort()).toEqual([...wanted].sort());
  for (const [c] of t.chats.entries()) {
    const mine = used.filter((u) => u.chat === c);
    expect(mine.map((u) => u.message)).toEqual(
      [...mine.map((u) => u.message)].sort((a, b) => a - b),
    );
    for (let i = 1; i < mine.length; i++) {
      expect(mine[i]!.at, `chat ${c}: message ${i} too soon`).toBeGreaterThanOrEqual(
        mine[i - 1]!.back + t.intervalMs,
      );
    }
    for (const h of holds.filter((x) => x.chat === c)) {
      for (const u of mine) {
        const inside = u.at >= h.from && u.at < h.until;
        expect(inside, `chat ${c}: sent at ${u.at} inside a hold`).toBe(false);
      }
    }
  }
  const times = used.map((u) => u.at).sort((a, b) => a - b);
  for (let i = 0; i < times.length; i++) {
    const inSecond = times.filter((x) => x >= times[i]! && x < times[i]! + 1_000).length;
    expect(inSecond, `more than ${t.perSecond}/s from ${times[i]}`).toBeLessThanOrEqual(
      t.perSecond + 1,
    );
  }
}

describe('the Telegram pacer under random traffic', () => {
  it('keeps every chat’s interval and holds, and the overall rate, and sends everything in order', async () => {
    await fc.assert(fc.asyncProperty(traffic, play), { numRuns: 500 });
  });
});
