/**
 * A worker process's engine: pulls from every partition consumer of the actor kinds it
 * hosts, groups whatever has arrived into one transaction (group commit), publishes the
 * outbox, settles each delivery, and sweeps timers and the outbox. Any number of workers
 * run side by side; the partition consumers (max_ack_pending 1) keep one writer per key.
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
  COMMAND_RETENTION_MS,
  ErrorCodes,
  HeaderNames,
  PARTITIONS,
  TerminalError,
  commandStreamName,
  parseCmdSubject,
  partitionConsumerName,
  retryJsApi,
  type ActorKind,
} from '../../contracts/index.ts';
import type { ActorDefinition } from './actor.ts';
import type { Clock } from './clock.ts';
import type { Database } from './db.ts';
import { publishRows, sweepOutbox } from './outbox.ts';
import { backoffDelay, settle, type Backoff } from './settle.ts';
import { runBatch, type Outcome, type Prepared, type PublishRow } from './store.ts';
import { sweepTimers } from './timers.ts';
import { drainParked } from './park.ts';
import type { RuntimeMetrics } from './metrics.ts';
import { pruneInbox } from './outbox.ts';
import { traceBatch, traceFields } from './tracing.ts';
import {
  RENEW_MS,
  createOwnership,
  leaseName,
  type Ownership,
  type PartitionSlot,
} from './ownership.ts';

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
  receivedAt: number;
}

/** Server-side expiry of one pull on a windowed partition; well under the lease (4 s). */
const WINDOW_FETCH_MS = 1_000;

function slotOf(p: { kind: ActorKind; partition: number }): string {
  return `${p.kind}/${p.partition}`;
}

function headerRecord(m: JsMsg): Record<string, string> {
  const out: Record<string, string> = {};
  if (m.headers === undefined) return out;
  for (const k of m.headers.keys()) out[k] = m.headers.get(k);
  return out;
}

export function prepare(m: JsMsg, kind: ActorKind, def: ActorDefinition | undefined): Prepared {
  const headers = headerRecord(m);
  const msgId = headers[HeaderNames.msgId] ?? `seq-${m.info.stream}-${m.seq}`;
  const base = {
    kind,
    msgId,
    subject: m.subject,
    stream: m.info.stream,
    streamSeq: m.seq,
    redeliveries: m.info.deliveryCount - 1,
    headers,
    data: m.data,
  };
  let key: string | undefined;
  try {
    const parsed = parseCmdSubject(m.subject);
    key = parsed.key;
    if (parsed.kind !== kind) {
      throw new TerminalError(ErrorCodes.badSubject, `${m.subject} is not a ${kind} command`);
    }
    if (def === undefined) {
      throw new TerminalError(ErrorCodes.unknownType, `no ${kind} actor in this worker`);
    }
    return { ...base, key, decoded: { ok: true, message: def.decode(m.data) } };
  } catch (err) {
    const error =
      err instanceof TerminalError
        ? err
        : new TerminalError(ErrorCodes.invalidPayload, String(err), err);
    return { ...base, key, decoded: { ok: false, error } };
  }
}

export function createWorker(opts: WorkerOptions): Worker {
  const log = opts.log.child({ component: 'worker' });
  const js: JetStreamClient = jetstream(opts.nc);
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
  const windowed = new Map<string, PartitionSlot>();
  /** Windowed partitions given up (ownership lost, stopping): their queued deliveries are dropped. */
  const abandoned = new Set<string>();
  let ownership: Ownership | undefined;

  /** Stops pulling a partition and forgets its queued deliveries; JetStream redelivers them. */
  function abandon(slot: PartitionSlot): void {
    const s = slotOf(slot);
    if (abandoned.has(s)) return;
    abandoned.add(s);
    const c = consumers.get(s);
    consumers.delete(s);
    void c?.close();
    const keep = queue.filter((p) => slotOf(p) !== s);
    queue.length = 0;
    for (const p of keep) queue.push(p);
  }
  const timers: NodeJS.Timeout[] = [];
  let running = 0;
  let stopping = false;
  let stopped: Promise<void> | undefined;
  let idle: (() => void) | undefined;

  let publishing: Promise<void> = Promise.resolve();
  function enqueuePublish(rows: PublishRow[]): void {
    publishing = publishing.then(async () => {
      try {
        const r = await publishRows(js, opts.db.knex, rows);
        if (r.failed > 0)
          log.warn({ failed: r.failed }, 'outbox publish failed; the sweeper will republish');
      } catch (err) {
        log.warn({ err }, 'outbox publish failed; the sweeper will republish');
      }
    });
  }

  /** The next batch: arrival order, skipping partitions already in a running batch. */
  function takeBatch(): Pending[] {
    ownership?.checkExpiry();
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    for (const p of queue) {
      if (abandoned.has(slotOf(p))) continue;
      if (batch.length < maxBatch && !busy.has(slotOf(p))) batch.push(p);
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
      const slots = new Set(batch.map(slotOf));
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

  type Committed = { outcomes: Outcome[]; publish: PublishRow[] };

  async function commit(items: Prepared[]): Promise<Committed> {
    try {
      return await runBatch(opts.db.knex, items, {
        actors,
        now: opts.clock.now(),
        maxAttempts,
        backoff,
      });
    } catch (err) {
      opts.metrics?.transactionsFailed.inc();
      if (items.length === 1) return giveUpOrRetry(items[0]!, err);
      // One item's conflict (a stale writer, a redelivery race) must not hold the others back.
      log.debug({ err, size: items.length }, 'batch failed, retrying its messages one by one');
      const outcomes: Outcome[] = [];
      const publish: PublishRow[] = [];
      // Once a key's message is to be retried, its later messages in this batch wait too.
      const held = new Set<string>();
      for (const item of items) {
        const k = `${item.kind}\u0000${item.key ?? ''}`;
        if (held.has(k)) {
          outcomes.push(
            retryOutcome(new Error('behind a message of its key that will be retried')),
          );
          continue;
        }
        const r = await commit([item]);
        if (r.outcomes[0]?.kind === 'retry') held.add(k);
        outcomes.push(...r.outcomes);
        publish.push(...r.publish);
      }
      return { outcomes, publish };
    }
  }

  /**
   * A message whose own transaction keeps failing (its records break a unique key, say) is
   * retried with backoff until the attempt limit, then dead-lettered without its effects.
   */
  async function giveUpOrRetry(item: Prepared, err: unknown): Promise<Committed> {
    if (item.redeliveries + 1 < maxAttempts) return { outcomes: [retryOutcome(err)], publish: [] };
    const reason = err instanceof Error ? err.message : String(err);
    const dead: Prepared = {
      ...item,
      decoded: {
        ok: false,
        error: new TerminalError(
          ErrorCodes.attemptsExhausted,
          `gave up after ${item.redeliveries + 1} attempts: ${reason}`,
          err,
        ),
      },
    };
    try {
      return await runBatch(opts.db.knex, [dead], {
        actors,
        now: opts.clock.now(),
        maxAttempts,
        backoff,
      });
    } catch (e) {
      opts.metrics?.transactionsFailed.inc();
      return { outcomes: [retryOutcome(e)], publish: [] };
    }
  }

  function retryOutcome(err: unknown): Outcome {
    return {
      kind: 'retry',
      error: {
        code: ErrorCodes.unavailable,
        message: err instanceof Error ? err.message : String(err),
        retryable: true,
      },
      delayMs: undefined,
    };
  }

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
        ownership?.checkExpiry();
        const keep = held.filter((i) => {
          if (!abandoned.has(slotOf(batch[i]!))) return true;
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
    const held: number[] = [];
    batch.forEach((b, i) => {
      const outcome = result.outcomes[i]!;
      if (outcome.kind === 'retry' && windowed.has(slotOf(b))) {
        if (!stopping && !abandoned.has(slotOf(b))) {
          held.push(i);
          return;
        }
        // Left unsettled: redelivered in order after ack_wait, to whoever owns it then.
        abandon(b);
        inFlight.delete(b);
        return;
      }
      inFlight.delete(b);
      if (outcome.kind === 'dead' || outcome.kind === 'retry' || outcome.kind === 'parked') {
        const level = outcome.kind === 'dead' ? 'warn' : 'info';
        log[level](
          {
            ...traceFields(items[i]!),
            actor: b.kind,
            subject: b.m.subject,
            msgId: b.m.headers?.get(HeaderNames.msgId) ?? undefined,
            streamSeq: b.m.seq,
            deliveryCount: b.m.info.deliveryCount,
            code: outcome.error.code,
            reason: outcome.error.message,
          },
          outcome.kind === 'dead'
            ? 'message dead-lettered'
            : outcome.kind === 'parked'
              ? 'message parked behind its key'
              : 'message will be retried',
        );
      }
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
    const messages = await c.consume({
      max_messages: Math.max(8, Math.min(window, maxBatch)),
      expires: 5_000,
      callback: (m) => {
        // Also while stopping: a message already handed to this worker is finished here.
        // (Nak-ing it instead made nats-server 2.9.10 deliver it twice, see docs/runtime.md.)
        // Not for a windowed partition given up: its next owner gets it, in order.
        if (abandoned.has(slot)) return;
        queue.push({ m, kind, partition, receivedAt: performance.now() });
        pump();
      },
    });
    consumers.set(slot, messages);
  }

  /** The consumer's window as the server has it (it may differ from this build's default). */
  async function windowOfOne(kind: ActorKind, partition: number): Promise<number> {
    const c = await retryJsApi(() =>
      js.consumers.get(commandStreamName(kind), partitionConsumerName(kind, partition)),
    );
    return (await c.info(true)).config.max_ack_pending ?? 1;
  }

  async function windowsOf(kind: ActorKind): Promise<Map<string, number>> {
    // One paged listing rather than 64 info requests at once (those time out on a busy cluster).
    const jsm = await js.jetstreamManager();
    const out = new Map<string, number>();
    const all = await retryJsApi(async () => {
      const found: [string, number][] = [];
      for await (const ci of jsm.consumers.list(commandStreamName(kind))) {
        found.push([ci.name, ci.config.max_ack_pending ?? 1]);
      }
      return found;
    });
    for (const [name, window] of all) out.set(name, window);
    return out;
  }

  /**
   * Takes over windowed partitions nobody owns. Deliveries the previous owner held expire
   * after ack_wait and come back in order; pulling before that could let newer ones pass.
   */
  async function claimWindowed(): Promise<void> {
    if (ownership === undefined || windowed.size === 0) return;
    const taken = await ownership.tick([...windowed.values()]);
    // Not awaited: renewals go on while a take-over waits out ack_wait.
    for (const slot of taken) {
      void pullOwned(slot).catch((err: unknown) => {
        log.warn({ err, partition: leaseName(slot) }, 'could not start pulling; giving it up');
        abandon(slot);
        void ownership?.release(slot).catch(() => undefined);
      });
    }
  }

  async function pullOwned(slot: PartitionSlot): Promise<void> {
    const c = await js.consumers.get(
      commandStreamName(slot.kind),
      partitionConsumerName(slot.kind, slot.partition),
    );
    const info = await c.info();
    if (info.num_ack_pending > 0) await new Promise((r) => setTimeout(r, ACK_WAIT_MS + 250));
    if (stopping || !ownership?.owns(slot)) return;
    abandoned.delete(slotOf(slot));
    log.info({ partition: leaseName(slot) }, 'owning windowed partition');
    await fetchOwned(slot, info.config.max_ack_pending ?? 1);
  }

  /** While the lease is fresh, at most WINDOW_FETCH_MS of deliveries after it: see below. */
  function stillOwned(slot: PartitionSlot): boolean {
    ownership?.checkExpiry();
    return !stopping && !abandoned.has(slotOf(slot)) && ownership?.owns(slot) === true;
  }

  /**
   * Explicit short pulls rather than a standing consume(): each pull is asked for only while
   * the lease is fresh and expires on the server after WINDOW_FETCH_MS, well inside the
   * lease. An owner paused past its lease therefore holds no pull the server could still
   * answer when it wakes, so nothing newer can reach it after the next owner began.
   */
  async function fetchOwned(slot: PartitionSlot, window: number): Promise<void> {
    const c = await js.consumers.get(
      commandStreamName(slot.kind),
      partitionConsumerName(slot.kind, slot.partition),
    );
    const s = slotOf(slot);
    while (stillOwned(slot)) {
      try {
        const batch = await c.fetch({ max_messages: window, expires: WINDOW_FETCH_MS });
        consumers.set(s, batch);
        for await (const m of batch) {
          // Not ours any more: left unacked, it returns to the next owner in order.
          if (!stillOwned(slot)) continue;
          queue.push({
            m,
            kind: slot.kind,
            partition: slot.partition,
            receivedAt: performance.now(),
          });
          pump();
        }
        if (consumers.get(s) === batch) consumers.delete(s);
      } catch (err) {
        // One pull failed (missed heartbeats on a busy machine, a reconnect): pull again
        // while the lease holds; what it had delivered is in the queue or comes back.
        log.debug({ err, partition: leaseName(slot) }, 'pull failed; pulling again');
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  function every(
    ms: number,
    what: string,
    fn: () => Promise<unknown>,
    whileStopping = false,
  ): void {
    let busy = false;
    timers.push(
      setInterval(() => {
        if (busy || (stopping && !whileStopping)) return;
        busy = true;
        fn()
          .catch((err: unknown) => log.warn({ err }, `${what} failed`))
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
        log.debug({ actor: kind }, 'listing partition consumers');
        const windows = await windowsOf(kind);
        log.debug({ actor: kind, consumers: windows.size }, 'pulling partitions');
        await Promise.all(
          Array.from({ length: PARTITIONS }, async (_, p) => {
            // A listing on a cluster may miss a consumer created a moment ago: ask it then.
            const window =
              windows.get(partitionConsumerName(kind, p)) ?? (await windowOfOne(kind, p));
            if (window > 1) windowed.set(slotOf({ kind, partition: p }), { kind, partition: p });
            else await consume(kind, p, window);
          }),
        );
      }
      if (windowed.size > 0) {
        ownership = createOwnership({
          knex: opts.db.knex,
          log,
          onLost: (slots) => slots.forEach(abandon),
        });
        await claimWindowed();
        every(RENEW_MS, 'partition ownership', claimWindowed);
        every(RENEW_MS / 4, 'lease watchdog', () => {
          ownership?.checkExpiry();
          return Promise.resolve();
        });
      }
      // A slow transaction must not let ack_wait expire and hand the key to another worker.
      every(
        ACK_WAIT_MS / 3,
        'ack extension',
        () => {
          const old = performance.now() - ACK_WAIT_MS / 3;
          for (const p of [...inFlight, ...queue]) {
            // A windowed partition given up must let its deliveries expire for the next owner.
            if (p.receivedAt < old && !abandoned.has(slotOf(p))) p.m.working();
          }
          return Promise.resolve();
        },
        true,
      );
      every(opts.timerPollMs ?? 500, 'timer sweep', async () => {
        const rows = await sweepTimers(opts.db.knex, { kinds, now: opts.clock.now(), limit: 500 });
        if (rows.length > 0) {
          log.debug({ fired: rows.length }, 'timers fired');
          await publishRows(js, opts.db.knex, rows);
          opts.metrics?.timersSwept(rows);
        }
      });
      every(opts.parkPollMs ?? 200, 'parking drain', async () => {
        // A head that succeeds makes the next message of its lot due at once: keep going.
        for (let round = 0; round < 50; round++) {
          const done = await drainParked(opts.db.knex, {
            actors,
            kinds,
            now: opts.clock.now(),
            maxAttempts,
            backoff,
            limit: 100,
          });
          for (const { prepared, result } of done) {
            if (result.publish.length > 0) enqueuePublish(result.publish);
            const outcome = result.outcomes[0]!;
            if (outcome.kind === 'dead') {
              log.warn(
                {
                  actor: prepared.kind,
                  subject: prepared.subject,
                  msgId: prepared.msgId,
                  code: outcome.error.code,
                  reason: outcome.error.message,
                },
                'message dead-lettered',
              );
            }
            opts.onSettled?.(prepared, outcome, 0);
            opts.metrics?.settled(prepared, outcome, undefined);
          }
          if (!done.some((d) => d.result.outcomes[0]?.kind !== 'parked')) break;
        }
        await opts.metrics?.sampleParkingLots(opts.db.knex, kinds);
      });
      every(60_000, 'inbox prune', async () => {
        const cutoff = new Date(
          opts.clock.now().getTime() - (opts.inboxRetentionMs ?? COMMAND_RETENTION_MS),
        );
        const pruned = await pruneInbox(opts.db.knex, cutoff, 5_000);
        if (pruned > 0) log.info({ pruned, cutoff }, 'inbox pruned');
      });
      every(opts.outboxSweepMs ?? 2_000, 'outbox sweep', async () => {
        await opts.metrics?.sampleOutboxLag(opts.db.knex);
        const republished = await sweepOutbox(js, opts.db.knex, log, {
          graceMs: 3_000,
          limit: 500,
        });
        opts.metrics?.outboxRepublished.inc(republished);
      });
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
        await ownership
          ?.close()
          .catch((err: unknown) => log.warn({ err }, 'releasing locks failed'));
        await publishing;
        await opts.nc.flush();
        log.info('worker stopped');
      })();
      return stopped;
    },
  };
}
