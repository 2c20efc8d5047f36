/**
 * A worker process's engine: pulls from every partition consumer of the actor kinds it
 * hosts, groups whatever has arrived into one transaction (group commit), publishes the
 * outbox, settles each delivery, and runs the periodic chores (chores.ts: timers, parking
 * lots, inbox, outbox sweep, vacuum). Any number of workers run side by side; the partition
 * consumers (max_ack_pending 1) keep one writer per key.
 */
import {
  jetstream,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  ACK_WAIT_MS,
  PARTITIONS,
  createJsPublisher,
  commandStreamName,
  partitionConsumerName,
  failureLog,
  retryJsApi,
  type ActorKind,
  watchConsumer,
} from '../../contracts/index.ts';
import type { ActorDefinition } from './actor.ts';
import type { Clock } from './clock.ts';
import type { Database } from './db.ts';
import { scheduleChores } from './chores.ts';
import { createAckedRows, publishRows } from './outbox.ts';
import { backoffDelay, settle, type Backoff } from './settle.ts';
import type { Outcome, Prepared, PublishRow } from './store.ts';
import { prepare } from './rows.ts';
import type { RuntimeMetrics } from './metrics.ts';
import { traceBatch } from './tracing.ts';
import { logOutcome } from './outcome-log.ts';
import { createCommitter, retryOutcome } from './commit.ts';
import { RENEW_MS } from './ownership.ts';
import { consumerWindows, createWindowed, slotOf } from './windowed.ts';

export interface WorkerOptions {
  nc: NatsConnection;
  db: Database;
  log: Logger;
  clock: Clock;
  actors: readonly ActorDefinition[];
  /** Most deliveries in one transaction. */
  maxBatch?: number;
  /** Transactions in flight at once. */
  concurrency?: number;
  /** Deliveries of one message before a retryable failure is dead-lettered. */
  maxAttempts?: number;
  backoff?: Backoff;
  timerPollMs?: number;
  /** How often due heads of parking lots are retried. */
  parkPollMs?: number;
  outboxSweepMs?: number;
  /** Inbox entries older than this (by the injected clock) are pruned. */
  inboxRetentionMs?: number;
  /** How often the churned tables' dead rows are checked (vacuum.ts); 0: never. */
  vacuumPollMs?: number;
  /** Observes each settled delivery (metrics, benchmarks). */
  onSettled?: (p: Prepared, outcome: Outcome, handleMs: number) => void;
  /** Prometheus recorders (actors/runtime/metrics.ts); nothing is recorded without them. */
  metrics?: RuntimeMetrics;
  /**
   * Fault injection for tests: when it returns true the delivery is left unsettled after its
   * transaction committed, as if the worker died between commit and ack.
   */
  dropSettle?: (p: Prepared, outcome: Outcome) => boolean;
}

export interface Worker {
  start(): Promise<void>;
  /** Stop pulling, finish in-flight batches, flush the outbox; safe to call twice. */
  stop(): Promise<void>;
  readonly inFlight: number;
}

interface Pending {
  m: JsMsg;
  kind: ActorKind;
  partition: number;
  /** slotOf(kind, partition), computed once: batches are picked by it from the whole queue. */
  slot: string;
  receivedAt: number;
}

export function createWorker(opts: WorkerOptions): Worker {
  const log = opts.log.child({ component: 'worker' });
  const js: JetStreamClient = jetstream(opts.nc);
  // Outbox rows and timer firings: the hot path's publishes (contracts/js-publish.ts).
  const publisher = createJsPublisher(opts.nc);
  const actors = new Map<ActorKind, ActorDefinition>(opts.actors.map((a) => [a.kind, a]));
  const maxBatch = opts.maxBatch ?? 256;
  const concurrency = opts.concurrency ?? 2;
  const maxAttempts = opts.maxAttempts ?? 10;
  const backoff = opts.backoff ?? { baseMs: 250, maxMs: 15_000 };
  const queue: Pending[] = [];
  const inFlight = new Set<Pending>();
  /** Partitions with a batch in flight: a partition's deliveries are never in two at once. */
  const busy = new Set<string>();
  const consumers = new Map<string, ConsumerMessages>();
  /** Partitions whose consumer hands out a window (> 1): pulled only while owned. */
  const windowed = createWindowed({
    js,
    knex: opts.db.knex,
    log,
    stopping: () => stopping,
    deliver: (m, slot) => {
      queue.push({
        m,
        kind: slot.kind,
        partition: slot.partition,
        slot: slotOf(slot),
        receivedAt: performance.now(),
      });
      pump();
    },
    dropQueued: (slot) => {
      const keep = queue.filter((p) => p.slot !== slot);
      queue.length = 0;
      for (const p of keep) queue.push(p);
    },
    pulls: consumers,
    hasPending: (slot) =>
      queue.some((p) => p.slot === slot) || [...inFlight].some((p) => p.slot === slot),
  });
  const timers: NodeJS.Timeout[] = [];
  let running = 0;
  let stopping = false;
  let stopped: Promise<void> | undefined;
  let idle: (() => void) | undefined;

  const acked = createAckedRows(opts.db.knex, log);

  let publishing: Promise<void> = Promise.resolve();
  function enqueuePublish(rows: PublishRow[]): void {
    publishing = publishing.then(async () => {
      try {
        const r = await publishRows(publisher, opts.db.knex, rows, (ids) => acked.add(ids));
        if (r.failed > 0)
          log.warn({ failed: r.failed }, 'outbox publish failed; the sweeper will republish');
      } catch (err) {
        log.warn({ err }, 'outbox publish failed; the sweeper will republish');
      }
    });
  }

  /** The next batch: arrival order, skipping partitions already in a running batch. */
  function takeBatch(): Pending[] {
    windowed.checkExpiry();
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    for (const p of queue) {
      if (windowed.isAbandoned(p.slot)) continue;
      if (batch.length < maxBatch && !busy.has(p.slot)) batch.push(p);
      else rest.push(p);
    }
    queue.length = 0;
    for (const p of rest) queue.push(p);
    return batch;
  }

  function pump(): void {
    while (running < concurrency && queue.length > 0) {
      const batch = takeBatch();
      if (batch.length === 0) return;
      const slots = new Set(batch.map((p) => p.slot));
      for (const s of slots) busy.add(s);
      running++;
      void runOne(batch).finally(() => {
        running--;
        for (const s of slots) busy.delete(s);
        if (running === 0 && queue.length === 0) idle?.();
        pump();
      });
    }
  }

  const commit = createCommitter({
    knex: opts.db.knex,
    actors,
    clock: opts.clock,
    maxAttempts,
    backoff,
    log,
    metrics: opts.metrics,
    published: acked,
    cache: new Map(),
  });

  async function runOne(first: Pending[]): Promise<void> {
    for (const b of first) inFlight.add(b);
    opts.metrics?.batchSize.observe(first.length);
    let batch = first;
    // One consumer span per delivery (actors/runtime/tracing.ts); emissions carry its context.
    const traced = traceBatch(batch.map((b) => prepare(b.m, b.kind, actors.get(b.kind))));
    let items = traced.items;
    try {
      for (let attempt = 0; batch.length > 0; attempt++) {
        const held = await traced.run(() => runItems(batch, items));
        if (held.length === 0) return;
        // A windowed partition's later deliveries are already out: a nak would let them pass
        // the held ones. Keep them here (the ack extension runs) and try again.
        await new Promise((r) => setTimeout(r, backoffDelay(attempt, backoff)));
        windowed.checkExpiry();
        const keep = held.filter((i) => {
          if (!windowed.isAbandoned(batch[i]!.slot)) return true;
          inFlight.delete(batch[i]!); // left unsettled for the next owner
          return false;
        });
        batch = keep.map((i) => batch[i]!);
        items = keep.map((i) => ({ ...items[i]!, redeliveries: items[i]!.redeliveries + 1 }));
      }
    } finally {
      traced.end();
    }
  }

  /** Commits and settles; returns the indexes of windowed deliveries held for another try. */
  async function runItems(batch: Pending[], items: Prepared[]): Promise<number[]> {
    let result: { outcomes: Outcome[]; publish: PublishRow[] };
    const began = performance.now();
    try {
      result = await commit(items);
    } catch (err) {
      log.warn({ err, size: batch.length }, 'transaction failed; messages will be retried');
      result = { outcomes: batch.map(() => retryOutcome(err)), publish: [] };
    }
    // The outbox rows are durable: settle first, publish behind (in commit order), so the
    // partition's next message is not held up by the publish round trip.
    if (result.publish.length > 0) enqueuePublish(result.publish);
    const settledAt = performance.now();
    opts.metrics?.batchSeconds.observe((settledAt - began) / 1000);
    const held: number[] = [];
    batch.forEach((b, i) => {
      const outcome = result.outcomes[i]!;
      if (outcome.kind === 'retry' && windowed.isWindowed(b.slot)) {
        if (!stopping && !windowed.isAbandoned(b.slot)) {
          held.push(i);
          return;
        }
        // Left unsettled: redelivered in order after ack_wait, to whoever owns it then.
        windowed.abandon(b);
        inFlight.delete(b);
        return;
      }
      inFlight.delete(b);
      logOutcome(log, b.m, b.kind, items[i]!, outcome);
      opts.onSettled?.(items[i]!, outcome, settledAt - b.receivedAt);
      opts.metrics?.settled(items[i]!, outcome, settledAt - b.receivedAt);
      if (opts.dropSettle?.(items[i]!, outcome) === true) return;
      settle(b.m, outcome, backoff);
    });
    return held;
  }

  async function consume(kind: ActorKind, partition: number, window: number): Promise<void> {
    const c = await retryJsApi(() =>
      js.consumers.get(commandStreamName(kind), partitionConsumerName(kind, partition)),
    );
    const slot = slotOf({ kind, partition });
    const watch = watchConsumer(log, {
      stream: commandStreamName(kind),
      consumer: partitionConsumerName(kind, partition),
    });
    const messages = await c.consume({
      max_messages: Math.max(8, Math.min(window, maxBatch)),
      expires: 5_000,
      callback: (m) => {
        watch.delivered();
        // Also while stopping: a message already handed to this worker is finished here.
        // (Nak-ing it instead made nats-server 2.9.10 deliver it twice, see docs/runtime.md.)
        // Not for a windowed partition given up: its next owner gets it, in order.
        if (windowed.isAbandoned(slot)) return;
        queue.push({ m, kind, partition, slot, receivedAt: performance.now() });
        pump();
      },
    });
    watch.follow(messages);
    consumers.set(slot, messages);
  }

  function every(
    ms: number,
    what: string,
    fn: () => Promise<unknown>,
    whileStopping = false,
  ): void {
    let busy = false;
    const failures = failureLog(log, what);
    timers.push(
      setInterval(() => {
        if (busy || (stopping && !whileStopping)) return;
        busy = true;
        fn()
          .then(
            () => failures.ok(),
            (err: unknown) => failures.failed(err),
          )
          .finally(() => {
            busy = false;
          });
      }, ms),
    );
  }

  return {
    get inFlight() {
      return inFlight.size + queue.length;
    },
    async start() {
      const kinds = [...actors.keys()];
      for (const kind of kinds) {
        const windows = await consumerWindows(js, kind, PARTITIONS);
        await Promise.all(
          windows.map(async (window, p) => {
            if (window > 1) windowed.add({ kind, partition: p });
            else await consume(kind, p, window);
          }),
        );
      }
      if (windowed.size > 0) {
        await windowed.claim();
        every(RENEW_MS, 'partition ownership', () => windowed.claim());
        every(RENEW_MS / 4, 'lease watchdog', () => {
          windowed.checkExpiry();
          return Promise.resolve();
        });
      }
      // A slow transaction must not let ack_wait expire and hand the key to another worker.
      every(
        ACK_WAIT_MS / 3,
        'ack extension',
        () => {
          const old = performance.now() - ACK_WAIT_MS / 3;
          // First give up leases that ran out: after a pause (a stopped process, a long GC)
          // this timer may fire before the watchdog's, and extending a lost partition's
          // deliveries would keep them from its next owner while it serves newer ones.
          windowed.checkExpiry();
          for (const p of [...inFlight, ...queue]) {
            // A windowed partition given up must let its deliveries expire for the next owner.
            if (p.receivedAt < old && !windowed.isAbandoned(p.slot)) p.m.working();
          }
          return Promise.resolve();
        },
        true,
      );
      scheduleChores(
        {
          knex: opts.db.knex,
          js,
          publisher,
          log,
          clock: opts.clock,
          actors,
          maxAttempts,
          backoff,
          timerPollMs: opts.timerPollMs,
          parkPollMs: opts.parkPollMs,
          outboxSweepMs: opts.outboxSweepMs,
          inboxRetentionMs: opts.inboxRetentionMs,
          vacuumPollMs: opts.vacuumPollMs,
          metrics: opts.metrics,
          onSettled: opts.onSettled,
          enqueuePublish,
        },
        every,
      );
      log.info({ actors: kinds, partitions: PARTITIONS }, 'worker started');
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        await Promise.allSettled([...consumers.values()].map((c) => c.close()));
        if (running > 0 || queue.length > 0) {
          await new Promise<void>((resolve) => {
            idle = resolve;
          });
        }
        for (const t of timers) clearInterval(t);
        await windowed
          .close()
          .catch((err: unknown) => log.warn({ err }, 'releasing leases failed'));
        await publishing;
        await acked.close();
        publisher.close();
        await opts.nc.flush();
        log.info('worker stopped');
      })();
      return stopped;
    },
  };
}
