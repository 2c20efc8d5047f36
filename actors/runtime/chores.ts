/**
 * A worker's periodic database work beside its batches: firing due timers, retrying the
 * heads of parking lots, pruning the inbox, republishing outbox rows whose publish was lost,
 * and vacuuming what the churn leaves behind. The worker runs each on its own interval
 * (`every`), never two rounds of one at once, and stops them when it stops.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { COMMAND_RETENTION_MS, type ActorKind, type JsPublisher } from '../../contracts/index.ts';
import type { ActorDefinition } from './actor.ts';
import type { Clock } from './clock.ts';
import type { RuntimeMetrics } from './metrics.ts';
import { publishRows, pruneInbox, sweepOutbox } from './outbox.ts';
import { drainParked } from './park.ts';
import type { Backoff } from './settle.ts';
import type { Outcome, Prepared, PublishRow } from './store.ts';
import { sweepTimers } from './timers.ts';
import { vacuumChurned } from './vacuum.ts';

export interface ChoreOptions {
  knex: Knex;
  js: JetStreamClient;
  publisher: JsPublisher;
  log: Logger;
  clock: Clock;
  actors: ReadonlyMap<ActorKind, ActorDefinition>;
  maxAttempts: number;
  backoff: Backoff;
  timerPollMs?: number;
  parkPollMs?: number;
  outboxSweepMs?: number;
  inboxRetentionMs?: number;
  /** 0: never. */
  vacuumPollMs?: number;
  metrics?: RuntimeMetrics;
  onSettled?: (p: Prepared, outcome: Outcome, handleMs: number) => void;
  /** Publishes a committed transaction's outbox rows behind the earlier ones. */
  enqueuePublish(rows: PublishRow[]): void;
}

/** Runs `fn` every `ms`, skipping a round while the previous one is still going. */
export type Every = (ms: number, what: string, fn: () => Promise<unknown>) => void;

export function scheduleChores(o: ChoreOptions, every: Every): void {
  const kinds = [...o.actors.keys()];
  every(o.timerPollMs ?? 500, 'timer sweep', async () => {
    const rows = await sweepTimers(o.knex, { kinds, now: o.clock.now(), limit: 500 });
    if (rows.length > 0) {
      o.log.debug({ fired: rows.length }, 'timers fired');
      await publishRows(o.publisher, o.knex, rows);
      o.metrics?.timersSwept(rows);
    }
  });
  every(o.parkPollMs ?? 200, 'parking drain', async () => {
    // A head that succeeds makes the next message of its lot due at once: keep going.
    for (let round = 0; round < 50; round++) {
      const done = await drainParked(o.knex, {
        actors: o.actors,
        kinds,
        now: o.clock.now(),
        maxAttempts: o.maxAttempts,
        backoff: o.backoff,
        limit: 100,
      });
      for (const { prepared, result } of done) {
        if (result.publish.length > 0) o.enqueuePublish(result.publish);
        const outcome = result.outcomes[0]!;
        if (outcome.kind === 'ok' && outcome.ignored !== undefined) {
          o.log.info(
            {
              actor: prepared.kind,
              subject: prepared.subject,
              msgId: prepared.msgId,
              reason: outcome.ignored,
            },
            'message ignored',
          );
        }
        if (outcome.kind === 'dead') {
          o.log.warn(
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
        o.onSettled?.(prepared, outcome, 0);
        o.metrics?.settled(prepared, outcome, undefined);
      }
      if (!done.some((d) => d.result.outcomes[0]?.kind !== 'parked')) break;
    }
  });
  every(60_000, 'inbox prune', async () => {
    const cutoff = new Date(o.clock.now().getTime() - (o.inboxRetentionMs ?? COMMAND_RETENTION_MS));
    const pruned = await pruneInbox(o.knex, cutoff, 5_000);
    if (pruned > 0) o.log.info({ pruned, cutoff }, 'inbox pruned');
  });
  // Gauges read from the database (outbox lag, parking-lot depth) at the outbox sweep's pace,
  // seconds, as scrapes need, not at the parking drain's 200 ms.
  const metrics = o.metrics;
  if (metrics !== undefined) {
    every(o.outboxSweepMs ?? 2_000, 'metric samples', async () => {
      await metrics.sampleOutboxLag(o.knex);
      await metrics.sampleParkingLots(o.knex, kinds);
    });
  }
  every(o.outboxSweepMs ?? 2_000, 'outbox sweep', async () => {
    const republished = await sweepOutbox(o.js, o.knex, o.log, { graceMs: 3_000, limit: 500 });
    o.metrics?.outboxRepublished.inc(republished);
  });
  const vacuumPollMs = o.vacuumPollMs ?? 10_000;
  if (vacuumPollMs > 0) {
    every(vacuumPollMs, 'vacuum', async () => {
      for (const v of await vacuumChurned(o.knex)) {
        o.log.debug(v, 'table vacuumed');
        o.metrics?.vacuumed(v);
      }
    });
  }
}
