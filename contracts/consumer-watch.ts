/**
 * What a pull consumer's client knows and says nowhere else: nats.js reports trouble with a
 * `consume()` only through its status notifications, and keeps pulling on its own. Unwatched,
 * a consumer whose server hangs, whose JetStream stops answering, or whose durable consumer
 * was deleted stops delivering without one log line. Here every such notification becomes a
 * line an operator can act on, at most a few per outage (`failureLog`):
 *
 * - `heartbeats_missed`: no message and no idle heartbeat for two heartbeats (a hung or
 *   overloaded server, a lost route). The client asks again; `works again` follows the next
 *   message, heartbeat or answer from the server.
 * - `consumer_deleted`, `consumer_not_found`, `stream_not_found`: nothing is consumed until
 *   it exists again. An error, not repaired here: the durable consumer comes back only from
 *   the process's own start (re-creating it blindly would deliver the stream again from its
 *   first message).
 * - `no_responders` (JetStream not answering), `exceeded_limits` (a pull refused: too many
 *   waiting, a batch too big): warnings.
 */
import type { ConsumerMessages, ConsumerNotification } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { failureLog } from './failing.ts';

export interface ConsumerWatch {
  /** Reads the consume()'s notifications until it stops. */
  follow(messages: Pick<ConsumerMessages, 'status'>): void;
  /** A message arrived: deliveries work (call from the consume callback or loop). */
  delivered(): void;
}

export interface WatchedConsumer {
  stream: string;
  consumer: string;
}

/** Made before the consume() (its callback calls `delivered`), then `follow`s it. */
export function watchConsumer(
  log: Logger,
  which: WatchedConsumer,
  now: () => number = Date.now,
): ConsumerWatch {
  const name = `${which.stream}/${which.consumer}`;
  const clog = log.child(which);
  const stalled = failureLog(clog, `deliveries from JetStream consumer ${name}`, now);
  const missing = failureLog(clog, `finding JetStream consumer ${name}`, now, undefined, 'error');
  const refused = failureLog(clog, `pulling from JetStream consumer ${name}`, now);
  let troubled = false;

  const fine = (): void => {
    if (!troubled) return;
    troubled = false;
    stalled.ok();
    missing.ok();
    refused.ok();
  };

  const seen = (s: ConsumerNotification): void => {
    switch (s.type) {
      case 'heartbeats_missed':
        troubled = true;
        stalled.failed(
          new Error(
            `no message and no heartbeat for ${s.count} idle heartbeats: the server is hung, ` +
              'overloaded or unreachable; asking again',
          ),
        );
        return;
      case 'consumer_deleted':
      case 'consumer_not_found':
      case 'stream_not_found':
        troubled = true;
        missing.failed(
          new Error(
            `${s.type.replace(/_/g, ' ')}: nothing is consumed from it until it exists again ` +
              '(this process creates its consumers when it starts)',
          ),
        );
        return;
      case 'no_responders':
        troubled = true;
        refused.failed(new Error('JetStream did not answer the pull (no responders)'));
        return;
      case 'exceeded_limits':
        troubled = true;
        refused.failed(new Error(`the server refused a pull: ${s.code} ${s.description}`));
        return;
      case 'heartbeat':
      case 'discard':
        // The server answered: an idle heartbeat, or a pull that expired (408).
        fine();
        return;
      case 'debug':
        if (s.code === 408) fine();
        else clog.debug({ code: s.code, description: s.description }, 'consumer status');
        return;
      default:
        return;
    }
  };

  return {
    follow(messages) {
      void (async () => {
        for await (const s of messages.status()) seen(s);
      })().catch((err: unknown) => clog.debug({ err }, 'consumer status watch ended'));
    },
    delivered() {
      if (troubled) fine();
    },
  };
}
