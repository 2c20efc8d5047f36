/**
 * The replayer's side of the replay clock (actors/runtime/clock.ts has the workers' side):
 * it stores the recording's current time on `respawn.clock.now` before publishing the
 * messages of that time. Workers started with `RESPAWN_CLOCK=replay` follow it.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  REPLAY_CLOCK_SUBJECT,
  encodeReplayTick,
  ensureReplayClockStream,
} from '../../actors/runtime/clock.ts';

/** Where a replay moves the target deployment's time. */
export interface ReplayClock {
  /** Moves the target's time to `at` (never backwards: workers ignore an earlier time). */
  set(at: Date): Promise<void>;
}

/** The replay clock on a NATS deployment; `set` returns once the server stored the time. */
export async function natsReplayClock(nc: NatsConnection): Promise<ReplayClock> {
  await ensureReplayClockStream(await jetstreamManager(nc));
  const js = jetstream(nc);
  let last = Number.NEGATIVE_INFINITY;
  return {
    async set(at) {
      if (at.getTime() <= last) return;
      await js.publish(REPLAY_CLOCK_SUBJECT, encodeReplayTick(at));
      last = at.getTime();
    },
  };
}
