/**
 * The Telegram sender's durable consumer on RESPAWN_OUT: made (or brought up to date) at
 * start, and, when a sender stops, seen to hold none of its pull requests any more before it
 * gives back what it had queued, so nothing given back is delivered to a pull nobody reads.
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { Streams, telegramOutConsumer } from '../../contracts/index.ts';
import { sleep } from '../async.ts';

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound;
}

/** Looks this many times, LOOK_AGAIN_MS apart, for another sender's pull request. */
const LOOKS = 3;
const LOOK_AGAIN_MS = 50;

export async function ensureOutConsumer(jsm: JetStreamManager, log: Logger): Promise<void> {
  const cfg = telegramOutConsumer();
  try {
    // Pull requests already waiting, before this sender asked for any: another one consumes.
    // A sender asks again as each pull ends (every second when idle): one look could fall in
    // between.
    let waiting = 0;
    for (let look = 0; look < LOOKS && waiting === 0; look++) {
      if (look > 0) await sleep(LOOK_AGAIN_MS);
      waiting = (await jsm.consumers.info(Streams.out.name, cfg.durable_name)).num_waiting;
    }
    if (waiting > 0) {
      log.error(
        { consumer: cfg.durable_name, waitingPulls: waiting },
        'another Telegram sender is consuming (or one stopped seconds ago): two senders can ' +
          "reorder a chat's messages; gateways of this version take turns through the sender " +
          'lease, so an older gateway may be running: set TELEGRAM_OUTBOUND=false on it',
      );
    }
    await jsm.consumers.update(Streams.out.name, cfg.durable_name, {
      description: cfg.description,
      ack_wait: cfg.ack_wait,
      max_deliver: cfg.max_deliver,
      max_waiting: cfg.max_waiting,
    });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(Streams.out.name, cfg);
  }
}

/**
 * Resolves once the consumer has no pull request waiting (a stopped sender's, whose
 * subscription is gone), or after `withinMs`: a pull's own expiry bounds the wait.
 */
export async function noPullsWaiting(jsm: JetStreamManager, withinMs = 6_000): Promise<void> {
  const deadline = performance.now() + withinMs;
  const name = telegramOutConsumer().durable_name;
  while (performance.now() < deadline) {
    try {
      const ci = await jsm.consumers.info(Streams.out.name, name);
      if (ci.num_waiting === 0) return;
    } catch {
      return; // NATS unreachable: the give-back is best effort, ack_wait redelivers anyway.
    }
    await sleep(50);
  }
}
