/**
 * The worker's windowed partitions (contracts/streams.ts PARTITION_WINDOWS): which they are,
 * who owns them (ownership.ts leases), and pulling them only while owned. docs/runtime.md,
 * "Windowed partitions", says why each rule is there.
 */
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import {
  ACK_WAIT_MS,
  commandStreamName,
  failureLog,
  partitionConsumerName,
  retryJsApi,
  type ActorKind,
} from '../../contracts/index.ts';
import { createOwnership, leaseName, type Ownership, type PartitionSlot } from './ownership.ts';

/**
 * Server-side expiry of one pull on a windowed partition, when the lease leaves room for it.
 * Each pull is a subscription, a request, a heartbeat at half the expiry (nats.js asks for it,
 * and the server allows no more) and an expiry, for each of the 192 windowed partitions of a
 * worker, busy or idle: 2 s pulls make half as many as 1 s pulls did.
 */
export const WINDOW_FETCH_MS = 2_000;
/** The shortest pull asked for (nats.js's heartbeat is at least 500 ms, half the expiry). */
export const MIN_FETCH_MS = 1_000;
/** A pull ends this long before the lease it was asked under could expire, at the latest. */
export const FETCH_MARGIN_MS = 250;

/**
 * The expiry of a pull asked for at `now` (ms, this process's clock) under a lease certainly
 * held for `leaseLeftMs` more; undefined when the lease leaves too little room. The pull ends
 * FETCH_MARGIN_MS before the lease could expire, at the latest. Otherwise it ends on a common
 * grid (every MIN_FETCH_MS of the clock), so a worker's pulls of all its partitions expire,
 * heartbeat and start again together: one wake-up of the worker and of its nats-server for all
 * of them rather than one for each.
 */
export function pullExpiry(leaseLeftMs: number, now: number): number | undefined {
  const room = Math.floor(leaseLeftMs - FETCH_MARGIN_MS);
  const toGrid = MIN_FETCH_MS - (now % MIN_FETCH_MS);
  const expires = Math.min(room, Math.round(WINDOW_FETCH_MS - MIN_FETCH_MS + toGrid));
  return expires < MIN_FETCH_MS ? undefined : expires;
}

export function slotOf(p: { kind: ActorKind; partition: number }): string {
  return `${p.kind}/${p.partition}`;
}

/** What the worker lends its windowed partitions. */
export interface WindowedHost {
  js: JetStreamClient;
  knex: Knex;
  log: Logger;
  stopping(): boolean;
  /** A delivery of an owned partition, for the worker's queue. */
  deliver(m: JsMsg, slot: PartitionSlot): void;
  /** Forget the queued deliveries of a partition given up; JetStream redelivers them. */
  dropQueued(slot: string): void;
  /** The worker's open pulls by partition, closed at stop. */
  pulls: Map<string, ConsumerMessages>;
  /** Whether deliveries of this partition are queued or in a batch being committed. */
  hasPending(slot: string): boolean;
}

export interface WindowedPartitions {
  readonly size: number;
  add(slot: PartitionSlot): void;
  isWindowed(slot: string): boolean;
  /** Given up (ownership lost, or stopping with a delivery held): not to be handled here. */
  isAbandoned(slot: string): boolean;
  /** Stops pulling a partition and forgets its queued deliveries. */
  abandon(slot: PartitionSlot): void;
  /** Gives everything up when lease renewals have failed too long; cheap, call often. */
  checkExpiry(): void;
  /** Renews the leases, takes free ones, starts pulling what it took (every RENEW_MS). */
  claim(): Promise<void>;
  /** Gives every lease up (a graceful stop). */
  close(): Promise<void>;
}

/** Each partition consumer's window as the server has it (it may differ from the defaults). */
export async function consumerWindows(
  js: JetStreamClient,
  kind: ActorKind,
  partitions: number,
): Promise<number[]> {
  // One paged listing rather than 64 info requests at once (those time out on a busy cluster).
  const jsm = await js.jetstreamManager();
  const listed = new Map(
    await retryJsApi(async () => {
      const found: [string, number][] = [];
      for await (const ci of jsm.consumers.list(commandStreamName(kind))) {
        found.push([ci.name, ci.config.max_ack_pending ?? 1]);
      }
      return found;
    }),
  );
  return Promise.all(
    Array.from({ length: partitions }, async (_, p) => {
      const known = listed.get(partitionConsumerName(kind, p));
      if (known !== undefined) return known;
      // A listing on a cluster may miss a consumer created a moment ago: ask it then.
      const c = await retryJsApi(() =>
        js.consumers.get(commandStreamName(kind), partitionConsumerName(kind, p)),
      );
      return (await c.info(true)).config.max_ack_pending ?? 1;
    }),
  );
}

/**
 * A partition's pulls failing this long without a break is reported (a pull failing now and
 * then on a busy machine is not): a hung nats-server, or the partition's consumer gone.
 */
export const PULL_FAILING_REPORT_MS = 15_000;

export function createWindowed(host: WindowedHost): WindowedPartitions {
  const { js, log } = host;
  // One report for all partitions: an outage is a few lines, not one per partition.
  const pullFailures = failureLog(log, 'pulling partition commands');
  // A partition that cannot start (its consumer gone) is taken again at every claim.
  const startFailures = failureLog(log, 'starting to pull a partition');
  const windowed = new Map<string, PartitionSlot>();
  const abandoned = new Set<string>();
  /** Offered back to balance the workers: no new pulls; released once drained. */
  const releasing = new Map<string, PartitionSlot>();
  /** Partitions with a pull loop running (or waiting to start one). */
  const pulling = new Set<string>();
  let ownership: Ownership | undefined;

  function abandon(slot: PartitionSlot): void {
    const s = slotOf(slot);
    releasing.delete(s);
    if (abandoned.has(s)) return;
    abandoned.add(s);
    const c = host.pulls.get(s);
    host.pulls.delete(s);
    void c?.close();
    host.dropQueued(s);
  }

  function stillOwned(slot: PartitionSlot): boolean {
    ownership?.checkExpiry();
    return !host.stopping() && !abandoned.has(slotOf(slot)) && ownership?.owns(slot) === true;
  }

  /**
   * Deliveries the previous owner held expire after ack_wait and come back in order; pulling
   * before that could let newer ones pass them.
   */
  async function pullOwned(slot: PartitionSlot): Promise<void> {
    const s = slotOf(slot);
    pulling.add(s);
    try {
      await startPulling(slot);
    } finally {
      pulling.delete(s);
    }
  }

  async function startPulling(slot: PartitionSlot): Promise<void> {
    const c = await js.consumers.get(
      commandStreamName(slot.kind),
      partitionConsumerName(slot.kind, slot.partition),
    );
    const info = await c.info();
    if (info.num_ack_pending > 0) await new Promise((r) => setTimeout(r, ACK_WAIT_MS + 250));
    if (host.stopping() || !ownership?.owns(slot)) return;
    abandoned.delete(slotOf(slot));
    log.info({ partition: leaseName(slot) }, 'owning windowed partition');
    startFailures.ok();
    await fetchOwned(slot, info.config.max_ack_pending ?? 1);
  }

  /**
   * Explicit short pulls rather than a standing consume(): each pull is asked for only while
   * the lease is fresh and expires on the server before the lease could (pullExpiry). An
   * owner paused past its lease therefore holds no pull the server could still answer when it
   * wakes, so nothing newer can reach it after the next owner began.
   */
  async function fetchOwned(slot: PartitionSlot, window: number): Promise<void> {
    const c = await js.consumers.get(
      commandStreamName(slot.kind),
      partitionConsumerName(slot.kind, slot.partition),
    );
    const s = slotOf(slot);
    let failingSince: number | undefined;
    let reported = false;
    while (stillOwned(slot) && !releasing.has(s)) {
      const expires = pullExpiry(ownership?.leaseLeftMs() ?? 0, performance.now());
      if (expires === undefined) {
        // A renewal is late: wait for it (or for the lease to be given up).
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      try {
        const batch = await c.fetch({ max_messages: window, expires });
        host.pulls.set(s, batch);
        for await (const m of batch) {
          // Not ours any more: left unacked, it returns to the next owner in order.
          if (stillOwned(slot)) host.deliver(m, slot);
        }
        if (host.pulls.get(s) === batch) host.pulls.delete(s);
        if (reported) pullFailures.ok();
        failingSince = undefined;
        reported = false;
      } catch (err) {
        // One pull failed (missed heartbeats on a busy machine, a reconnect): pull again
        // while the lease holds; what it had delivered is in the queue or comes back.
        const now = performance.now();
        failingSince ??= now;
        if (now - failingSince >= PULL_FAILING_REPORT_MS) {
          reported = true;
          pullFailures.failed(err, {
            partition: leaseName(slot),
            stream: commandStreamName(slot.kind),
            consumer: partitionConsumerName(slot.kind, slot.partition),
            failingForMs: Math.round(now - failingSince),
            hint: 'a hung or unreachable nats-server, or this consumer is gone (nats consumer info)',
          });
        } else log.debug({ err, partition: leaseName(slot) }, 'pull failed; pulling again');
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  return {
    get size() {
      return windowed.size;
    },
    add(slot) {
      windowed.set(slotOf(slot), slot);
      ownership ??= createOwnership({
        knex: host.knex,
        log,
        onLost: (slots) => slots.forEach(abandon),
      });
    },
    isWindowed: (s) => windowed.has(s),
    isAbandoned: (s) => abandoned.has(s),
    abandon,
    checkExpiry() {
      ownership?.checkExpiry();
    },
    async claim() {
      if (ownership === undefined || windowed.size === 0) return;
      const { taken, surplus } = await ownership.tick([...windowed.values()]);
      for (const slot of surplus) releasing.set(slotOf(slot), slot);
      for (const [s, slot] of releasing) {
        if (pulling.has(s) || host.hasPending(s)) continue;
        releasing.delete(s);
        await ownership.release(slot);
        log.info({ partition: leaseName(slot) }, 'windowed partition handed back to balance');
      }
      // Not awaited: renewals go on while a take-over waits out ack_wait.
      for (const slot of taken) {
        void pullOwned(slot).catch((err: unknown) => {
          startFailures.failed(err, { partition: leaseName(slot), gaveUp: true });
          abandon(slot);
          void ownership?.release(slot).catch(() => undefined);
        });
      }
    },
    async close() {
      await ownership?.close();
    },
  };
}
