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

/** The command stream of one actor kind: partitioned subjects `respawn.<kind>.*.cmd.*.<p>`. */
export function commandStream(kind: ActorKind): StreamDef {
  return {
    name: cmdStreamName(kind),
    subjects: [`${ROOT}.${kind}.*.cmd.*.*`],
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
 * One durable pull consumer per partition with max_ack_pending 1: the server hands a
 * partition's next message out only after the previous one is settled, to whichever worker
 * asks, so order per key and a single writer hold across any number of workers.
 */
export function partitionConsumer(kind: ActorKind, partition: number): Partial<ConsumerConfig> {
  return {
    durable_name: partitionConsumerName(kind, partition),
    description: `${kind} actors, partition ${partition} of ${PARTITIONS}`,
    filter_subject: partitionFilter(kind, partition),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ACK_WAIT_MS),
    max_ack_pending: 1,
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

function isNotFound(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamNotFound ||
      err.code === JetStreamApiCodes.ConsumerNotFound)
  );
}

/** Creates or updates every stream, and the partition consumers of the given actor kinds. */
export async function ensureTopology(
  jsm: JetStreamManager,
  opts: { consumersFor: readonly ActorKind[]; replicas?: number },
): Promise<void> {
  for (const def of allStreams()) {
    const cfg = { ...streamConfig(def), num_replicas: opts.replicas ?? 1 };
    try {
      await jsm.streams.info(def.name);
      await jsm.streams.update(def.name, cfg);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams.add(cfg);
    }
  }
  for (const kind of opts.consumersFor) {
    const stream = cmdStreamName(kind);
    await Promise.all(
      Array.from({ length: PARTITIONS }, async (_, p) => {
        const cfg = partitionConsumer(kind, p);
        const name = partitionConsumerName(kind, p);
        try {
          await jsm.consumers.info(stream, name);
          await jsm.consumers.update(stream, name, {
            description: cfg.description,
            ack_wait: cfg.ack_wait,
            max_deliver: cfg.max_deliver,
            max_waiting: cfg.max_waiting,
          });
        } catch (err) {
          if (!isNotFound(err)) throw err;
          await jsm.consumers.add(stream, cfg);
        }
      }),
    );
  }
}

export function commandStreamName(kind: ActorKind): string {
  return cmdStreamName(kind);
}
