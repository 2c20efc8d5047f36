/**
 * Whether the NATS connection is up right now, from the client's own status events, so a
 * webhook can answer 503 at once instead of waiting for a publish to time out.
 */
import type { NatsConnection } from '@nats-io/transport-node';

export interface ConnectionWatch {
  connected(): boolean;
  stop(): void;
}

export function watchConnection(nc: NatsConnection): ConnectionWatch {
  let up = !nc.isClosed();
  const events = nc.status();
  void (async () => {
    for await (const s of events) {
      if (s.type === 'disconnect' || s.type === 'close') up = false;
      else if (s.type === 'reconnect') up = true;
    }
  })();
  return {
    connected: () => up && !nc.isClosed(),
    stop: () => {
      // The client's status iterator has stop(); its declared type is a plain AsyncIterable.
      if ('stop' in events && typeof events.stop === 'function')
        (events.stop as () => void).call(events);
    },
  };
}
