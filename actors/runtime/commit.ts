/**
 * One batch's transaction as the worker runs it: the whole batch first; if that fails, each
 * message alone (one message's conflict must not hold the others back, and a key whose message
 * is to be retried keeps its later messages back too); a message whose own transaction keeps
 * failing is retried until the attempt limit, then dead-lettered without its effects.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { ErrorCodes, TerminalError, type ActorKind } from '../../contracts/index.ts';
import type { ActorDefinition } from './actor.ts';
import type { Clock } from './clock.ts';
import type { RuntimeMetrics } from './metrics.ts';
import type { Backoff } from './settle.ts';
import {
  runBatch,
  type Outcome,
  type Prepared,
  type PublishRow,
  type StateCache,
} from './store.ts';

export interface Committed {
  outcomes: Outcome[];
  publish: PublishRow[];
}

export interface CommitOptions {
  knex: Knex;
  actors: ReadonlyMap<ActorKind, ActorDefinition>;
  clock: Clock;
  maxAttempts: number;
  backoff: Backoff;
  log: Logger;
  metrics?: RuntimeMetrics | undefined;
  /** In-place actors' states this worker wrote last (store.ts StateCache). */
  cache?: StateCache;
  /**
   * Published outbox rows waiting to be deleted: a batch takes them into its transaction and
   * gives them back if that does not commit.
   */
  published?: { take(): string[]; restore(ids: string[]): void };
}

/** The outcome of a delivery whose transaction could not commit: try again later. */
export function retryOutcome(err: unknown): Outcome {
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

export function createCommitter(o: CommitOptions): (items: Prepared[]) => Promise<Committed> {
  const run = async (items: Prepared[]): Promise<Committed> => {
    const published = o.published?.take() ?? [];
    try {
      return await runBatch(o.knex, items, {
        actors: o.actors,
        ...(o.cache === undefined ? {} : { cache: o.cache }),
        now: o.clock.now(),
        maxAttempts: o.maxAttempts,
        backoff: o.backoff,
        published,
      });
    } catch (err) {
      if (published.length > 0) o.published?.restore(published);
      throw err;
    }
  };

  async function giveUpOrRetry(item: Prepared, err: unknown): Promise<Committed> {
    if (item.redeliveries + 1 < o.maxAttempts) {
      return { outcomes: [retryOutcome(err)], publish: [] };
    }
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
      return await run([dead]);
    } catch (e) {
      o.metrics?.transactionsFailed.inc();
      return { outcomes: [retryOutcome(e)], publish: [] };
    }
  }

  async function commit(items: Prepared[]): Promise<Committed> {
    try {
      return await run(items);
    } catch (err) {
      o.metrics?.transactionsFailed.inc();
      if (items.length === 1) return giveUpOrRetry(items[0]!, err);
      o.log.debug({ err, size: items.length }, 'batch failed, retrying its messages one by one');
      const outcomes: Outcome[] = [];
      const publish: PublishRow[] = [];
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

  return commit;
}
