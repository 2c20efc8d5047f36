/**
 * Streams and consumers as code. `ensureTopology` creates or updates them idempotently at
 * start-up, so a deployment converges on what this file says.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { ActorKinds, PARTITIONS, ROOT, partitionFilter, type ActorKind } from './subjects.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
/** JetStream drops a repeated Nats-Msg-Id within this window; PostgreSQL inboxes catch the rest. */
export const DUPLICATE_WINDOW_MS = 2 * 60 * 1000;
/**
 * A delivery not acked (nor extended with `working()`) within this time is redelivered, so
 * a killed worker's partitions move to another worker within ACK_WAIT_MS.
 */
export const ACK_WAIT_MS = 3_000;

/**
 * How long a command stream keeps messages. An inbox entry must live at least as long, or a
 * message still in the stream could be delivered again to a consumer that forgot it.
 */
export const COMMAND_RETENTION_MS = 30 * DAY_MS;

export interface StreamDef {
  name: string;
  subjects: string[];
  maxAgeMs: number;
  description: string;
}

function cmdStreamName(kind: ActorKind): string {
  return `RESPAWN_${kind.toUpperCase()}_CMD`;
}

export const Streams = {
  ingress: {
    name: 'RESPAWN_IN',
    subjects: [`${ROOT}.in.*`],
    maxAgeMs: 30 * DAY_MS,
    description: 'Raw ingress (Telegram, Razorpay, VM agents) as received, after authentication',
  },
  events: {
    name: 'RESPAWN_EVT',
    subjects: Object.values(ActorKinds).map((k) => `${ROOT}.${k}.*.evt.*`),
    maxAgeMs: 30 * DAY_MS,
    description: 'What actors decided, per actor kind and key',
  },
  out: {
    name: 'RESPAWN_OUT',
    subjects: [`${ROOT}.out.>`],
    maxAgeMs: 7 * DAY_MS,
    description: 'Effects for the gateway to carry out (Telegram sends, Razorpay calls)',
  },
  dlq: {
    name: 'RESPAWN_DLQ',
    subjects: [`${ROOT}.dlq.>`],
    maxAgeMs: 90 * DAY_MS,
    description: 'Dead letters: the original message and headers plus why it failed',
  },
} as const satisfies Record<string, StreamDef>;

/**
 * The command stream of one actor kind: partitioned subjects `respawn.<kind>.*.cmd.*.<p>`, one
 * per partition token 0…63. A command published with any other last token (`.x`, `.64`, `.03`)
 * is not stored (the publisher's JetStream publish fails), rather than stored where no
 * partition consumer would ever see it.
 */
export function commandStream(kind: ActorKind): StreamDef {
  return {
    name: cmdStreamName(kind),
    subjects: Array.from({ length: PARTITIONS }, (_, p) => `${ROOT}.${kind}.*.cmd.*.${p}`),
    maxAgeMs: COMMAND_RETENTION_MS,
    description: `Commands to ${kind} actors, partitioned by key`,
  };
}

export function allStreams(): StreamDef[] {
  return [...Object.values(Streams), ...Object.values(ActorKinds).map((k) => commandStream(k))];
}

export function partitionConsumerName(kind: ActorKind, partition: number): string {
  return `${kind}-p${String(partition).padStart(2, '0')}`;
}

/**
 * Deliveries a partition consumer hands out before the first is settled (its
 * `max_ack_pending`). With 1 the server hands a partition's next message out only after the
 * previous one is settled, to whichever worker asks, so order per key and a single writer
 * hold across any number of workers with no other coordination.
 *
 * A kind with a window needs a worker to own the partition (a lease row,
 * actors/runtime/ownership.ts; shared fairly among the workers hosting the kind) before it
 * pulls, and it applies the window's messages in order in one transaction, writing each key's
 * state once. The allocator (one hot key per region) could otherwise decide only as fast as
 * one transaction per message; sessions and billing, whose players' heartbeats, meters and
 * replies arrive many per second per partition at a peak, kept only one message per partition
 * in flight and fell behind (bench:load at 2,000 players: 76x with 1, 100x with 32).
 * The allocator's window is twice a worker's largest batch (256): with a window of one batch,
 * each pull's last messages arrived after its batch was taken and made a small batch of their
 * own, a transaction of nearly the same cost (bench:allocation, 2026-12-06, alternating runs:
 * 18-19 allocator batches and 972-1,148 decisions/s with 256; 12-13 and 1,159-1,243 with 512;
 * 11-12 and 1,117-1,206 with 1,024).
 * The demo kind keeps the plain design for the runtime's own tests.
 */
export const PARTITION_WINDOWS: Readonly<Record<ActorKind, number>> = {
  session: 32,
  billing: 32,
  alloc: 512,
  demo: 1,
};

/** The largest window a deployment may configure (nats-server caps pending acks per pull). */
export const MAX_PARTITION_WINDOW = 1024;

export type PartitionWindows = Partial<Record<ActorKind, number>>;

export function partitionWindow(kind: ActorKind, overrides: PartitionWindows = {}): number {
  const w = overrides[kind] ?? PARTITION_WINDOWS[kind];
  if (!Number.isInteger(w) || w < 1 || w > MAX_PARTITION_WINDOW) {
    throw new RangeError(
      `partition window of ${kind} must be 1..${MAX_PARTITION_WINDOW}, got ${w}`,
    );
  }
  return w;
}

/** One durable pull consumer per partition; see PARTITION_WINDOWS for `max_ack_pending`. */
export function partitionConsumer(
  kind: ActorKind,
  partition: number,
  windows: PartitionWindows = {},
): Partial<ConsumerConfig> {
  return {
    durable_name: partitionConsumerName(kind, partition),
    description: `${kind} actors, partition ${partition} of ${PARTITIONS}`,
    filter_subject: partitionFilter(kind, partition),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ACK_WAIT_MS),
    max_ack_pending: partitionWindow(kind, windows),
    max_deliver: -1,
    max_waiting: 512,
  };
}

function streamConfig(def: StreamDef): Partial<StreamConfig> & { name: string } {
  return {
    name: def.name,
    subjects: def.subjects,
    description: def.description,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(def.maxAgeMs),
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    num_replicas: 1,
  };
}

/** JetStream's "stream name already in use" (not among the client's named codes). */
const STREAM_NAME_IN_USE = 10058;

function isNotFound(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamNotFound ||
      err.code === JetStreamApiCodes.ConsumerNotFound)
  );
}

/**
 * Runs one JetStream API call again while it fails for want of an answer (a timeout, no
 * responders, a 5xx): on a cluster a request in flight when a leader dies is never answered,
 * and a worker starting then must not wait out one long timeout or die. Definite answers (not
 * found, bad request) are returned at once. Gives up after `totalMs`.
 */
export async function retryJsApi<T>(fn: () => Promise<T>, totalMs = 60_000): Promise<T> {
  const deadline = Date.now() + totalMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const definite = err instanceof JetStreamApiError && err.status < 500;
      if (definite || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
    }
  }
}

/**
 * Creates or updates every stream, and the partition consumers of the given actor kinds. Give
 * it a JetStreamManager with a short request timeout (a few seconds): each call is retried.
 */
export async function ensureTopology(
  jsm: JetStreamManager,
  opts: { consumersFor: readonly ActorKind[]; replicas?: number; windows?: PartitionWindows },
): Promise<void> {
  // 1 on a single node; 3 (or 5) on a cluster, where a stream then survives losing a node.
  const replicas = opts.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new RangeError(`stream replicas must be 1..5, got ${replicas}`);
  }
  for (const def of allStreams()) {
    const cfg = { ...streamConfig(def), num_replicas: replicas };
    try {
      await retryJsApi(() => jsm.streams.info(def.name));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await retryJsApi(() => jsm.streams.add(cfg)).catch((e: unknown) => {
        // An add whose answer was lost and that is retried finds its own stream.
        if (!(e instanceof JetStreamApiError && e.code === STREAM_NAME_IN_USE)) throw e;
      });
      continue;
    }
    await retryJsApi(() => jsm.streams.update(def.name, cfg));
  }
  for (const kind of opts.consumersFor) {
    const stream = cmdStreamName(kind);
    // A few at a time, and no update where nothing differs: on a cluster every change is a
    // consensus round, and 64 at once from each starting worker stalled nats-server 2.9.10.
    await inBatches(PARTITIONS, 8, async (p) => {
      const cfg = partitionConsumer(kind, p, opts.windows);
      const name = partitionConsumerName(kind, p);
      const wanted = {
        description: cfg.description,
        ack_wait: cfg.ack_wait,
        max_deliver: cfg.max_deliver,
        max_waiting: cfg.max_waiting,
        max_ack_pending: cfg.max_ack_pending,
      };
      let have: ConsumerConfig;
      try {
        have = (await retryJsApi(() => jsm.consumers.info(stream, name))).config;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await retryJsApi(() => jsm.consumers.add(stream, cfg));
        return;
      }
      const differs = (Object.keys(wanted) as (keyof typeof wanted)[]).some(
        (k) => have[k] !== wanted[k],
      );
      if (differs) await retryJsApi(() => jsm.consumers.update(stream, name, wanted));
    });
  }
}

async function inBatches(n: number, size: number, fn: (i: number) => Promise<void>): Promise<void> {
  for (let start = 0; start < n; start += size) {
    await Promise.all(Array.from({ length: Math.min(size, n - start) }, (_, j) => fn(start + j)));
  }
}

export function commandStreamName(kind: ActorKind): string {
  return cmdStreamName(kind);
}
