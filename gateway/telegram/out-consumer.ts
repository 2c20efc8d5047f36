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

export async function ensureOutConsumer(jsm: JetStreamManager, log: Logger): Promise<void> {
  const cfg = telegramOutConsumer();
  try {
    const ci = await jsm.consumers.info(Streams.out.name, cfg.durable_name);
    // Pull requests already waiting, before this sender asked for any: another one consumes.
    if (ci.num_waiting > 0) {
      log.error(
        { consumer: cfg.durable_name, waitingPulls: ci.num_waiting },
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
