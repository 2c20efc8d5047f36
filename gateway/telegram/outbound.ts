/**
 * Carries out `respawn.out.telegram.<chatId>`: a durable pull consumer on RESPAWN_OUT, one
 * in-process queue per chat (order kept, about one message a second per chat, about thirty a
 * second overall), grammY for the calls.
 *
 * Never lost: a message is acked only after Telegram accepted it (and its record is stored);
 * a 429 waits `retry_after` and tries again, network errors and 5xx retry with backoff, while
 * the ack is kept alive. Telegram's refusals (400, 403) and invalid out messages go to
 * `respawn.dlq.gateway.<code>` with the reason, then are terminated.
 *
 * Collapsed: an out message with a `collapseKey` (an answer to /status, Balance, Help) that is
 * still waiting for its chat's turn when a newer one with the same key is queued behind it is
 * recorded as collapsed and acked, never sent: pressing Status five times in a second gets the
 * first answer at once and the newest a second later, not five answers over five seconds.
 *
 * Never doubled: before sending, the out message's Nats-Msg-Id is looked up in the sent store;
 * after sending, the record is written before the ack. What remains: a crash (or a lost
 * response) after Telegram accepted a send and before the record is stored — milliseconds —
 * sends that message again on redelivery; Telegram's sendMessage has no idempotency key.
 */
import { setMaxListeners } from 'node:events';
import {
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Api } from 'grammy';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  deadLetterHeaders,
  headerRecord,
  ErrorCodes,
  GATEWAY_DLQ_TOKEN,
  HeaderNames,
  Streams,
  TELEGRAM_OUT_ACK_WAIT_MS,
  TelegramSend,
  TerminalError,
  TraceAttributes,
  failureLog,
  gatewayDlqSubject,
  tracedConsume,
  telegramOutConsumer,
  traceIdOf,
  watchConsumer,
} from '../../contracts/index.ts';
import { sleep } from '../async.ts';
import { SendOutcomes, createOutboundMetrics } from '../metrics.ts';
import { createTelegramCaller, type TelegramSendMessage } from './deliver.ts';
import { supersededBy } from './collapse.ts';
import { ensureOutConsumer, noPullsWaiting } from './out-consumer.ts';
import { createPacer, type PacerClock } from './pacer.ts';
import { createSentStore, type SentStore } from './sent-store.ts';

export interface TelegramOutboundOptions {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  api: Api;
  log: Logger;
  metricsRegistry: Registry;
  /** Least time between two sends to one chat. Telegram: about 1000 ms. */
  perChatIntervalMs: number;
  /** Sends per second overall. Telegram: about 30. */
  globalPerSecond: number;
  /** Strings never logged (the bot token). */
  secrets?: readonly string[];
  clock?: PacerClock;
  backoff?: { baseMs: number; maxMs: number };
  /** Tests: a store other than the KV bucket. */
  store?: SentStore;
  /** No chat gets a message sooner than this after start (another sender just stopped). */
  pauseFirstMs?: number;
}

export interface TelegramOutbound {
  start(): Promise<void>;
  /** Finishes the calls in flight and gives back (nak) what is still queued. */
  stop(): Promise<void>;
  /** Out messages received and not yet settled. */
  readonly pending: number;
}

interface Entry {
  m: JsMsg;
  msgId: string;
  send: TelegramSendMessage;
}

const systemClock: PacerClock = { now: () => Date.now(), sleep };

/** Messages one pull asks for, and how long the server keeps it open (a stop waits it out). */
const PULL_BATCH = 256;
const PULL_EXPIRES_MS = 1_000;

export function createTelegramOutbound(opts: TelegramOutboundOptions): TelegramOutbound {
  const log = opts.log.child({ component: 'telegram-out' });
  const metrics = createOutboundMetrics(opts.metricsRegistry);
  const clock = opts.clock ?? systemClock;
  const backoff = opts.backoff ?? { baseMs: 500, maxMs: 30_000 };
  const secrets = opts.secrets ?? [];
  const store = opts.store ?? createSentStore({ nc: opts.nc, jsm: opts.jsm });
  const pacer = createPacer({
    perChatIntervalMs: opts.perChatIntervalMs,
    globalPerSecond: opts.globalPerSecond,
    clock,
    notBefore: clock.now() + (opts.pauseFirstMs ?? 0),
  });
  const call = createTelegramCaller({ api: opts.api, store, metrics, secrets });
  const abort = new AbortController();
  // Every message waiting for its chat's or the global send rate listens on this signal (and
  // stops listening when its wait ends): hundreds at a peak are expected, not a leak.
  setMaxListeners(0, abort.signal);
  const bySeq = new Map<number, Entry>();
  const chats = new Map<string, Entry[]>();
  const work = new Set<Promise<void>>();
  let pulling: Promise<void> | undefined;
  let extender: NodeJS.Timeout | undefined;
  let stopping = false;

  function track(p: Promise<void>): void {
    work.add(p);
    void p.finally(() => work.delete(p));
  }

  const sendFailures = failureLog(log, 'telegram send');
  const watched = { stream: Streams.out.name, consumer: telegramOutConsumer().durable_name };
  const watch = watchConsumer(log, watched);

  function delay(attempt: number): number {
    const exp = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(attempt, 20));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  /**
   * Retries `fn` with backoff until it succeeds; once the sender is stopping, one more try
   * only. False if it never succeeded.
   */
  async function persist(what: string, fn: () => Promise<void>): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await fn();
        return true;
      } catch (err) {
        if (stopping) {
          log.warn({ err }, `${what} failed while stopping`);
          return false;
        }
        log.warn({ err, attempt }, `${what} failed; retrying`);
        await clock.sleep(delay(attempt), abort.signal);
      }
    }
  }

  /**
   * Publishes the original to `respawn.dlq.gateway.<code>` with the reason, records the
   * decision (so a redelivery is not tried again), then terminates the delivery.
   */
  async function deadLetter(
    m: JsMsg,
    msgId: string,
    code: string,
    reason: string,
    chatId?: string,
  ): Promise<void> {
    const h = deadLetterHeaders(m, headerRecord(m), { code, reason, actor: GATEWAY_DLQ_TOKEN });
    let again = false;
    const stored = await persist('dead-letter publish', async () => {
      if ((await store.settledFor(msgId)) !== undefined) {
        again = true;
        return;
      }
      await opts.js.publish(gatewayDlqSubject(code), m.data, {
        msgID: `dlq-${GATEWAY_DLQ_TOKEN}-${m.seq}`,
        headers: h,
      });
      await store.recordSettled(msgId, { outcome: 'dead_lettered', chatId, at: clock.now() });
    });
    if (!stored) return;
    if (again) {
      m.term();
      metrics.sends.inc({ outcome: SendOutcomes.duplicate });
      return;
    }
    // No reason argument: nats-server 2.9 ignores a "+TERM <reason>" ack and redelivers.
    m.term();
    metrics.sends.inc({ outcome: SendOutcomes.deadLettered });
    log.warn(
      { subject: m.subject, streamSeq: m.seq, code, reason },
      'telegram out message dead-lettered',
    );
  }

  /**
   * Settles one entry inside its consumer span (the parent: the context in its headers, so the
   * Bot API call is part of the player's trace); returns when it is acked, dead-lettered, or
   * the sender stops.
   */
  function traceDelivery(entry: Entry): Promise<void> {
    const { m } = entry;
    return tracedConsume(m, m.headers, entry.msgId, (span) => deliver(entry, traceIdOf(span)), {
      [TraceAttributes.chat]: entry.send.chatId,
    });
  }

  const newerOf = (entry: Entry): Entry | undefined =>
    supersededBy(chats.get(entry.send.chatId) ?? [], entry);

  /** Settles an entry a newer answer made pointless: recorded (a redelivery sends nothing), acked. */
  async function collapse(entry: Entry, newer: Entry, ctx: object): Promise<void> {
    const recorded = await persist('collapsed record', async () => {
      await store.recordSettled(entry.msgId, {
        outcome: 'collapsed',
        chatId: entry.send.chatId,
        at: clock.now(),
      });
    });
    if (!recorded) return;
    entry.m.ack();
    metrics.sends.inc({ outcome: SendOutcomes.collapsed });
    log.debug(
      { ...ctx, collapseKey: entry.send.collapseKey, newer: newer.msgId },
      'out message dropped unsent: a newer one with its collapseKey is queued',
    );
  }

  async function deliver(entry: Entry, traceId: string | undefined): Promise<void> {
    const { send, msgId } = entry;
    const ctx = { traceId, chatId: send.chatId, msgId, editKey: send.editKey };
    for (let attempt = 0; !stopping; ) {
      try {
        const before = await store.settledFor(msgId);
        if (before !== undefined) {
          entry.m.ack();
          metrics.sends.inc({ outcome: SendOutcomes.duplicate });
          log.info(
            { ...ctx, before: before.outcome },
            'out message was settled before; acked without sending again',
          );
          return;
        }
        let newer = newerOf(entry);
        if (newer !== undefined) return await collapse(entry, newer, ctx);
        await pacer.acquire(send.chatId, abort.signal);
        if (stopping) return;
        // The newer answer may have come while this one waited for its turn: it takes the turn.
        newer = newerOf(entry);
        if (newer !== undefined) {
          pacer.giveBack(send.chatId);
          return await collapse(entry, newer, ctx);
        }
        const outcome = await call(send);
        // Whatever Telegram answered, this call reached it: the chat's interval counts from now.
        pacer.sent(send.chatId);
        switch (outcome.kind) {
          case 'sent': {
            const rec = {
              outcome: 'sent' as const,
              chatId: send.chatId,
              messageId: outcome.messageId,
              at: clock.now(),
            };
            const recorded = await persist('sent record', async () => {
              if ((await store.recordSettled(msgId, rec)) === 'existed') {
                log.warn(ctx, 'another delivery of this out message was sent too');
              }
              if (send.editKey !== undefined)
                await store.setEditTarget(send.chatId, send.editKey, rec);
            });
            sendFailures.ok();
            // Unrecorded (stopping with NATS down): acking still prevents a redelivery.
            if (!recorded) log.warn(ctx, 'sent but not recorded');
            entry.m.ack();
            metrics.sends.inc({
              outcome: outcome.edited ? SendOutcomes.edited : SendOutcomes.sent,
            });
            log.debug({ ...ctx, messageId: outcome.messageId, edited: outcome.edited }, 'sent');
            return;
          }
          case 'retry_after':
            metrics.sends.inc({ outcome: SendOutcomes.rateLimited });
            log.info({ ...ctx, retryAfterMs: outcome.ms }, 'telegram flood control; waiting');
            pacer.holdChat(send.chatId, outcome.ms);
            continue;
          case 'rejected':
            sendFailures.ok(); // Telegram answered: it is up
            await deadLetter(
              entry.m,
              msgId,
              ErrorCodes.rejected,
              `telegram refused: ${outcome.description}`,
              send.chatId,
            );
            return;
          case 'transient':
            throw new Error(outcome.description);
        }
      } catch (err) {
        metrics.sends.inc({ outcome: SendOutcomes.retried });
        const reason = err instanceof Error ? err.message : String(err);
        // Every chat's head retries on its own: while the Bot API is down, one warning (with
        // the first chat's details), then a count every 30 s, not a line per message per try.
        sendFailures.failed(reason, { ...ctx, attempt });
        log.debug({ ...ctx, attempt, reason }, 'telegram send failed; retrying');
        await clock.sleep(delay(attempt++), abort.signal);
      }
    }
  }

  async function runChat(chatId: string, queue: Entry[]): Promise<void> {
    while (queue.length > 0 && !stopping) {
      const entry = queue[0]!;
      await traceDelivery(entry);
      if (stopping) break;
      queue.shift();
      bySeq.delete(entry.m.seq);
    }
    chats.delete(chatId);
  }

  function receive(m: JsMsg): void {
    watch.delivered();
    metrics.received.inc();
    const queued = bySeq.get(m.seq);
    if (queued !== undefined) {
      // Redelivered while still queued here (ack_wait passed): keep one, answer the newest.
      queued.m = m;
      return;
    }
    const msgId = m.headers?.get(HeaderNames.msgId) || `seq-${m.seq}`;
    let send: TelegramSendMessage;
    try {
      send = TelegramSend.decode(m.data);
      const subjectChat = m.subject.split('.')[3];
      if (subjectChat !== send.chatId) {
        throw new TerminalError(
          ErrorCodes.badSubject,
          `subject ${m.subject} names chat ${subjectChat ?? '?'}, the payload chat ${send.chatId}`,
        );
      }
    } catch (err) {
      const code = err instanceof TerminalError ? err.code : ErrorCodes.invalidPayload;
      const reason = err instanceof Error ? err.message : String(err);
      track(deadLetter(m, msgId, code, reason));
      return;
    }
    const entry: Entry = { m, msgId, send };
    bySeq.set(m.seq, entry);
    let queue = chats.get(send.chatId);
    if (queue === undefined) {
      queue = [];
      chats.set(send.chatId, queue);
      queue.push(entry);
      track(runChat(send.chatId, queue));
    } else {
      queue.push(entry);
    }
  }

  /**
   * One pull at a time, each ended by the server (its batch delivered, or expired), never by
   * closing its subscription: what the server sent to a subscription already closed would be
   * neither sent nor given back, but redelivered ack_wait later, after newer messages of its
   * chat (nats.js's consume() closes so when it stops). A stop lets the last pull end.
   */
  async function pull(consumer: Consumer): Promise<void> {
    for (let attempt = 0; !stopping; ) {
      try {
        const batch = await consumer.fetch({
          max_messages: PULL_BATCH,
          expires: PULL_EXPIRES_MS,
        });
        watch.follow(batch);
        for await (const m of batch) receive(m);
        attempt = 0;
      } catch (err) {
        if (opts.nc.isClosed()) return;
        // What the server said (a consumer deleted, no responders) the watch logs. Asked again
        // within a pull's time, so a consumer or a connection back is used at once.
        log.debug({ err, attempt }, 'pull from the out consumer failed; pulling again');
        if (!stopping) await sleep(Math.min(delay(attempt++), PULL_EXPIRES_MS), abort.signal);
      }
    }
  }

  return {
    get pending() {
      return bySeq.size;
    },
    async start() {
      await store.ensure();
      await ensureOutConsumer(opts.jsm, log);
      const consumer = await opts.js.consumers.get(Streams.out.name, watched.consumer);
      pulling = pull(consumer);
      // Waiting behind a chat's pacing or a retry_after must not look like a dead gateway.
      extender = setInterval(() => {
        for (const e of bySeq.values()) e.m.working();
      }, TELEGRAM_OUT_ACK_WAIT_MS / 3);
      extender.unref();
      log.info('telegram sender started');
    },
    async stop() {
      stopping = true;
      abort.abort();
      await pulling;
      await noPullsWaiting(opts.jsm);
      while (work.size > 0) await Promise.allSettled([...work]);
      // Given back oldest first, so the next sender (another gateway's) sends them first.
      const unsent = [...bySeq.values()].sort((a, b) => a.m.seq - b.m.seq);
      for (const e of unsent) e.m.nak();
      await opts.nc.flush().catch(() => undefined);
      if (opts.store === undefined) store.close();
      if (extender !== undefined) clearInterval(extender);
      log.info({ unsent: bySeq.size }, 'telegram sender stopped');
    },
  };
}
