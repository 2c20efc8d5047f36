/**
 * Telegram's limits for a bot, in process: about one message a second to one chat and about
 * thirty a second overall. Each chat has its next permitted time; the overall limit is a
 * token bucket of one token refilled at `globalPerSecond` (sends evenly spaced, so no
 * one-second window holds more than the rate plus one), where a caller reserves its token at
 * once and then waits out its debt, so concurrent chats are served in arrival order.
 */

export interface PacerClock {
  now(): number;
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface Pacer {
  /** Waits until `chatId` may receive a message and the bot may send one more overall. */
  acquire(chatId: string, signal?: AbortSignal): Promise<void>;
  /** Telegram answered 429 with retry_after: nothing more to this chat before then. */
  holdChat(chatId: string, ms: number): void;
  /**
   * The turn `acquire` just gave was not used (its message turned out not to be needed):
   * the chat's next message, and the bot's, may go at once.
   */
  giveBack(chatId: string): void;
  /**
   * The call of the turn `acquire` gave has come back: the chat's next message waits a whole
   * interval from now. Telegram counts arrivals, and a call held up on its way (a busy event
   * loop, a slow connection) arrives late; counted from the turn alone, the next message could
   * arrive less than an interval after it.
   */
  sent(chatId: string): void;
}

export interface PacerOptions {
  perChatIntervalMs: number;
  globalPerSecond: number;
  clock: PacerClock;
  /**
   * No chat's first message before this time (clock ms): a sender that took over from another
   * does not know when that one last wrote to each chat, only that it may have until now.
   */
  notBefore?: number;
}

const SWEEP_AT = 10_000;

export function createPacer(opts: PacerOptions): Pacer {
  const { clock } = opts;
  const chatNext = new Map<string, number>();
  const rate = opts.globalPerSecond / 1000;
  // A burst allowance would let a window hold burst + rate sends; Telegram counts per second.
  const capacity = 1;
  let tokens = capacity;
  let refilledAt = clock.now();
  // The chat that reserved the last turn. A turn given back returns its token only if none was
  // reserved after it (a chat holds one turn at a time): a later caller's wait already counted
  // it spent, so returning it then would let a new caller go with it, a burst over the rate.
  let lastTurn: string | undefined;

  function sweep(now: number): void {
    if (chatNext.size < SWEEP_AT) return;
    for (const [chat, t] of chatNext) if (t <= now) chatNext.delete(chat);
  }

  /** Takes one token now, possibly going into debt; returns how long to wait for it. */
  function reserve(): number {
    const now = clock.now();
    tokens = Math.min(capacity, tokens + (now - refilledAt) * rate);
    refilledAt = now;
    tokens -= 1;
    return tokens >= 0 ? 0 : Math.ceil(-tokens / rate);
  }

  return {
    async acquire(chatId, signal) {
      // A hold may be extended while waiting (a 429), so look again after every wait.
      for (;;) {
        const wait = (chatNext.get(chatId) ?? opts.notBefore ?? 0) - clock.now();
        if (wait <= 0) break;
        await clock.sleep(wait, signal);
        if (signal?.aborted === true) return;
      }
      const debt = reserve();
      lastTurn = chatId;
      if (debt > 0) await clock.sleep(debt, signal);
      const now = clock.now();
      chatNext.set(chatId, now + opts.perChatIntervalMs);
      sweep(now);
    },
    giveBack(chatId) {
      chatNext.delete(chatId);
      if (lastTurn !== chatId) return;
      lastTurn = undefined;
      tokens = Math.min(capacity, tokens + 1);
    },
    sent(chatId) {
      const next = clock.now() + opts.perChatIntervalMs;
      chatNext.set(chatId, Math.max(chatNext.get(chatId) ?? 0, next));
    },
    holdChat(chatId, ms) {
      const until = clock.now() + ms;
      chatNext.set(chatId, Math.max(chatNext.get(chatId) ?? 0, until));
    },
  };
}
