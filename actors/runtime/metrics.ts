/**
 * The actor workers' metric names and label values, in one place, and the recorders the
 * worker calls where it already settles deliveries, sweeps timers, drains parking lots and
 * sweeps the outbox. Metrics are registered on the prom-client Registry the process passes in
 * (no default registry). Every label value comes from a closed set (actor kinds, message types
 * an actor declared, outcome kinds, error codes): never a key, player or message id.
 */
import type { Knex } from 'knex';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { TimerFired, parseCmdSubject, type ActorKind } from '../../contracts/index.ts';
import type { Outcome, Prepared, PublishRow } from './rows.ts';
import type { Vacuumed } from './vacuum.ts';

export const RuntimeMetricNames = {
  messagesHandled: 'respawn_actor_messages_handled_total',
  handleSeconds: 'respawn_actor_handle_seconds',
  redeliveries: 'respawn_actor_redeliveries_total',
  deadLetters: 'respawn_actor_dead_letters_total',
  parked: 'respawn_actor_parked_total',
  parkingLotDepth: 'respawn_actor_parking_lot_depth',
  outboxLagSeconds: 'respawn_actor_outbox_lag_seconds',
  outboxRepublished: 'respawn_actor_outbox_republished_total',
  timerLagSeconds: 'respawn_actor_timer_lag_seconds',
  timersFired: 'respawn_actor_timers_fired_total',
  batchSize: 'respawn_actor_batch_size',
  batchSeconds: 'respawn_actor_batch_seconds',
  transactionsFailed: 'respawn_actor_transactions_failed_total',
  vacuumSeconds: 'respawn_actor_vacuum_seconds',
} as const;

/** The `type` label of a message that could not be decoded (its claimed type is not trusted). */
export const UNDECODED_TYPE = 'undecoded';

export interface RuntimeMetrics {
  readonly messagesHandled: Counter<'actor' | 'type' | 'outcome'>;
  readonly handleSeconds: Histogram<'actor'>;
  readonly redeliveries: Counter<'actor'>;
  readonly deadLetters: Counter<'actor' | 'code'>;
  readonly parked: Counter<'actor'>;
  readonly parkingLotDepth: Gauge<'actor'>;
  readonly outboxLagSeconds: Gauge;
  readonly outboxRepublished: Counter;
  readonly timerLagSeconds: Histogram<'actor'>;
  readonly timersFired: Counter<'actor'>;
  readonly batchSize: Histogram;
  /** One batch's transaction: from taking a connection to COMMIT, one-at-a-time retries included. */
  readonly batchSeconds: Histogram;
  readonly transactionsFailed: Counter;

  /**
   * One settled delivery or parking-lot retry; `handleMs` (receipt → settled) is recorded for
   * deliveries from JetStream only.
   */
  settled(p: Prepared, outcome: Outcome, handleMs: number | undefined): void;
  /** Firings the timer sweep wrote to the outbox (their payload carries due and fired times). */
  timersSwept(rows: readonly PublishRow[]): void;
  /** Samples each hosted kind's parked-message count. */
  sampleParkingLots(knex: Knex, kinds: readonly ActorKind[]): Promise<void>;
  /** Samples the age of the oldest outbox row not yet published (0 when the outbox is empty). */
  sampleOutboxLag(knex: Knex): Promise<void>;
  /** Records a vacuum of a churned table (vacuum.ts). */
  vacuumed(v: Vacuumed): void;
}

/** Where a dead letter is counted outside a batch (an ingress router, the effects runner). */
export interface DeadLetterCounter {
  inc(labels: { actor: string; code: string }): void;
}

/**
 * The registry's `respawn_actor_dead_letters_total`, made once: the actors' batches, the
 * ingress routers (`ingress-<source>`) and the Azure effects runner (`azure-effects`) count
 * their dead letters on the same counter, so one panel shows every dead letter of a worker.
 */
export function deadLetterCounter(registry: Registry): Counter<'actor' | 'code'> {
  const existing = registry.getSingleMetric(RuntimeMetricNames.deadLetters);
  if (existing instanceof Counter) return existing;
  return new Counter({
    name: RuntimeMetricNames.deadLetters,
    help: 'Messages dead-lettered, by actor and error code',
    labelNames: ['actor', 'code'] as const,
    registers: [registry],
  });
}

function messageType(p: Prepared): string {
  if (!p.decoded.ok) return UNDECODED_TYPE;
  const m = p.decoded.message;
  // The decoder accepted it against the actor's own message set, so `type` is one of those.
  return typeof m === 'object' && m !== null && 'type' in m && typeof m.type === 'string'
    ? m.type
    : UNDECODED_TYPE;
}

/**
 * 1 while this worker plays a role taken in turns through a lease (the Azure effects runner of
 * a region: `role="azure-effects.<region>"`), 0 while it stands by.
 */
export function createRoleMetrics(registry: Registry): Gauge<'role'> {
  return new Gauge({
    name: 'respawn_worker_role_active',
    help: 'Roles played one worker at a time: 1 on the worker playing it, 0 on those standing by',
    labelNames: ['role'],
    registers: [registry],
  });
}

export function createRuntimeMetrics(registry: Registry): RuntimeMetrics {
  const registers = [registry];
  const messagesHandled = new Counter({
    name: RuntimeMetricNames.messagesHandled,
    help: 'Deliveries settled (and parking-lot retries) by actor, message type and outcome',
    labelNames: ['actor', 'type', 'outcome'] as const,
    registers,
  });
  const handleSeconds = new Histogram({
    name: RuntimeMetricNames.handleSeconds,
    help: 'Time from receipt of a delivery to its settlement, batch transaction included',
    labelNames: ['actor'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const redeliveries = new Counter({
    name: RuntimeMetricNames.redeliveries,
    help: 'Deliveries JetStream made more than once (delivery count above 1)',
    labelNames: ['actor'] as const,
    registers,
  });
  const deadLetters = deadLetterCounter(registry);
  const parked = new Counter({
    name: RuntimeMetricNames.parked,
    help: 'Deliveries put in their key parking lot (a retryable failure, or behind one)',
    labelNames: ['actor'] as const,
    registers,
  });
  const parkingLotDepth = new Gauge({
    name: RuntimeMetricNames.parkingLotDepth,
    help: 'Messages waiting in parking lots, sampled by the drain loop',
    labelNames: ['actor'] as const,
    registers,
  });
  const outboxLagSeconds = new Gauge({
    name: RuntimeMetricNames.outboxLagSeconds,
    help: 'Age of the oldest unpublished outbox row, sampled by the outbox sweeper',
    registers,
  });
  const outboxRepublished = new Counter({
    name: RuntimeMetricNames.outboxRepublished,
    help: 'Outbox rows the sweeper published because their batch had not',
    registers,
  });
  const timerLagSeconds = new Histogram({
    name: RuntimeMetricNames.timerLagSeconds,
    help: 'How late a durable timer fired (fired-at minus due-at, by the worker clock)',
    labelNames: ['actor'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
    registers,
  });
  const timersFired = new Counter({
    name: RuntimeMetricNames.timersFired,
    help: 'Durable timers fired by the timer sweep',
    labelNames: ['actor'] as const,
    registers,
  });
  const batchSize = new Histogram({
    name: RuntimeMetricNames.batchSize,
    help: 'Deliveries grouped into one batch transaction',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    registers,
  });
  const batchSeconds = new Histogram({
    name: RuntimeMetricNames.batchSeconds,
    help: 'Time of one batch transaction, from taking a connection to COMMIT (retries included)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const transactionsFailed = new Counter({
    name: RuntimeMetricNames.transactionsFailed,
    help: 'Batch transactions that threw (their messages are retried or dead-lettered)',
    registers,
  });
  const vacuumSeconds = new Histogram({
    name: RuntimeMetricNames.vacuumSeconds,
    help: 'Vacuums a worker ran on a table whose dead rows passed its threshold, and their time',
    labelNames: ['table'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers,
  });

  return {
    messagesHandled,
    handleSeconds,
    redeliveries,
    deadLetters,
    parked,
    parkingLotDepth,
    outboxLagSeconds,
    outboxRepublished,
    timerLagSeconds,
    timersFired,
    batchSize,
    batchSeconds,
    transactionsFailed,

    vacuumed(v) {
      vacuumSeconds.observe({ table: v.table }, v.ms / 1000);
    },
    settled(p, outcome, handleMs) {
      const actor = p.kind;
      const kind =
        outcome.kind === 'ok' && outcome.ignored !== undefined ? 'ignored' : outcome.kind;
      messagesHandled.inc({ actor, type: messageType(p), outcome: kind });
      const fromStream = p.parkedId === undefined;
      if (fromStream && handleMs !== undefined) handleSeconds.observe({ actor }, handleMs / 1000);
      if (fromStream && p.redeliveries > 0) redeliveries.inc({ actor });
      if (outcome.kind === 'dead') deadLetters.inc({ actor, code: outcome.error.code });
      // A parking-lot retry that fails again stays where it was: only arrivals count.
      if (outcome.kind === 'parked' && fromStream) parked.inc({ actor });
    },

    timersSwept(rows) {
      for (const row of rows) {
        const fired = TimerFired.decode(row.data);
        const actor = parseCmdSubject(row.subject).kind;
        timersFired.inc({ actor });
        const lagMs = Date.parse(fired.firedAt) - Date.parse(fired.dueAt);
        timerLagSeconds.observe({ actor }, Math.max(0, lagMs) / 1000);
      }
    },

    async sampleParkingLots(knex, kinds) {
      if (kinds.length === 0) return;
      const rows = await knex('rt_parked')
        .select<{ actor: string; n: string | number }[]>('actor', knex.raw('count(*) as n'))
        .whereIn('actor', [...kinds])
        .groupBy('actor');
      const depth = new Map(rows.map((r) => [r.actor, Number(r.n)]));
      for (const actor of kinds) parkingLotDepth.set({ actor }, depth.get(actor) ?? 0);
    },

    async sampleOutboxLag(knex) {
      // Both ends from the database clock, so a skewed worker clock cannot distort the age.
      // The lowest id is the oldest row (ids are drawn at insert), found through the primary
      // key: min(created_at) read the whole table, dead rows and all, every two seconds
      // (about 190 ms each late in a replayed day).
      const rows = await knex('rt_outbox')
        .select<
          { lag: string | number | null }[]
        >(knex.raw('extract(epoch from now() - created_at) as lag'))
        .orderBy('id')
        .limit(1);
      const lag = rows[0]?.lag;
      outboxLagSeconds.set(lag === null || lag === undefined ? 0 : Math.max(0, Number(lag)));
    },
  };
}
