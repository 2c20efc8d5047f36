/** Time is injected: handlers, timers and sweepers read it from a Clock, never from Date. */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  StorageType,
  jetstreamManager,
  type JetStreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { z } from 'zod';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock tests and replays move by hand. */
export interface ManualClock extends Clock {
  set(at: Date): void;
  advance(ms: number): void;
}

export function manualClock(start: Date): ManualClock {
  let t = start.getTime();
  return {
    now: () => new Date(t),
    set: (at) => {
      t = at.getTime();
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

/** The system clock shifted by a fixed offset: lets a separate worker process run "later". */
export function offsetClock(offsetMs: number): Clock {
  return { now: () => new Date(Date.now() + offsetMs) };
}

/**
 * The replay clock (`RESPAWN_CLOCK=replay`): a test or replay deployment's workers read time
 * from the last value the replayer (`npm run replay -- play --clock`) stored on
 * `respawn.clock.now`, so durable timers fire by the recording's timeline rather than by wall
 * time. The value is kept in a one-message stream, so a worker started mid-replay picks it up;
 * live updates arrive on a core subscription of the worker's own connection. The replayer
 * stores a new time before it publishes the messages of that time, and the server delivers to
 * one connection in order, so a worker has seen the time before it is handed the commands
 * routed from those messages.
 */
export const REPLAY_CLOCK_STREAM = 'RESPAWN_CLOCK';
export const REPLAY_CLOCK_SUBJECT = 'respawn.clock.now';

const ReplayTick = z.object({ at: z.iso.datetime() });

/** The stored form of one replay-clock value: `{"at":"<ISO-8601>"}`. */
export function encodeReplayTick(at: Date): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ at: at.toISOString() }));
}

/** The time in a replay-clock message, or undefined when it is not one. */
export function decodeReplayTick(data: Uint8Array): Date | undefined {
  try {
    const r = ReplayTick.safeParse(JSON.parse(new TextDecoder().decode(data)));
    return r.success ? new Date(r.data.at) : undefined;
  } catch {
    return undefined;
  }
}

/** Creates the clock's stream (one message, the latest time) if it does not exist. */
export async function ensureReplayClockStream(jsm: JetStreamManager): Promise<void> {
  try {
    await jsm.streams.info(REPLAY_CLOCK_STREAM);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) {
      throw err;
    }
    await jsm.streams.add({
      name: REPLAY_CLOCK_STREAM,
      description: 'Replay clock: the recorded time a replay has reached (test deployments)',
      subjects: [REPLAY_CLOCK_SUBJECT],
      storage: StorageType.File,
      max_msgs_per_subject: 1,
      num_replicas: 1,
    });
  }
}

export interface FollowedClock extends Clock {
  /** Whether any time was received yet (before that, now() is the Unix epoch). */
  started(): boolean;
  stop(): void;
}

/**
 * A Clock that follows the replay clock: now() is the latest time received, never going
 * backwards. Before the first value it answers the Unix epoch, at which no timer is due.
 */
export async function followReplayClock(opts: {
  nc: NatsConnection;
  log: Logger;
}): Promise<FollowedClock> {
  const log = opts.log.child({ component: 'replay-clock' });
  let t: number | undefined;
  const advance = (data: Uint8Array, from: string): void => {
    const at = decodeReplayTick(data);
    if (at === undefined) {
      log.warn({ from, bytes: data.length }, 'not a replay-clock value; ignored');
      return;
    }
    if (t === undefined) log.info({ at: at.toISOString() }, 'replay clock started');
    if (t === undefined || at.getTime() > t) t = at.getTime();
  };
  // Subscribed before reading the stored value, so no update falls between the two. A
  // callback (not an iterator) applies the time as the message is read off the socket.
  const sub = opts.nc.subscribe(REPLAY_CLOCK_SUBJECT, {
    callback: (err, m) => {
      if (err === null) advance(m.data, 'subscription');
    },
  });
  const jsm = await jetstreamManager(opts.nc);
  await ensureReplayClockStream(jsm);
  try {
    const last = await jsm.streams.getMessage(REPLAY_CLOCK_STREAM, {
      last_by_subj: REPLAY_CLOCK_SUBJECT,
    });
    if (last !== null) advance(last.data, 'stream');
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.NoMessageFound)) {
      throw err;
    }
  }
  if (t === undefined) log.warn('replay clock has no time yet; timers wait for the replayer');
  return {
    now: () => new Date(t ?? 0),
    started: () => t !== undefined,
    stop: () => sub.unsubscribe(),
  };
}
