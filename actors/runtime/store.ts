/**
 * Handles a batch of deliveries in one PostgreSQL transaction (group commit): inbox check,
 * state read under row locks, plain handlers in memory, then set-based writes of state
 * (guarded by its version), inbox rows, outbox rows, timers and the actor's own records.
 * Several partitions' messages share one commit; a batch never holds two messages of one
 * partition in normal operation, and if it does (a redelivery race) they are applied in
 * stream order.
 *
 * A retryable failure parks the message in its key's parking lot (rt_parked) and the
 * delivery is acked, so only that key waits: its later messages are parked behind it until
 * the lot drains (park.ts retries the head with backoff). Other keys of the partition go on.
 */
import type { Knex } from 'knex';
import {
  ErrorCodes,
  RetryableError,
  TIMER_VERB,
  TerminalError,
  cmdSubject,
  type ActorKind,
} from '../../contracts/index.ts';
import type { ActorDefinition } from './actor.ts';
import { isTimer, pairKey, type Outcome, type Prepared, type PublishRow } from './rows.ts';
import { applyHandlers, type Working } from './apply.ts';
import type { Backoff } from './settle.ts';
import {
  readBatch,
  writeBatch,
  type StateWrite,
  type TimerSet,
  type WriteInput,
} from './batch-sql.ts';

export { classify, type Outcome, type Prepared, type PublishRow } from './rows.ts';

export interface BatchResult {
  outcomes: Outcome[];
  publish: PublishRow[];
}

/**
 * The last state a worker wrote of each key of an actor that changes its state in place (a
 * large hot state, `mutatesState`), by pairKey(actor, key). A batch takes its keys' entries
 * out, reads only their versions (the body only if another writer moved it), and puts back
 * what it wrote once it has committed: a batch that fails leaves nothing behind here.
 */
export type StateCache = Map<string, { version: number; state: unknown }>;

export interface BatchOptions {
  actors: ReadonlyMap<ActorKind, ActorDefinition>;
  cache?: StateCache;
  now: Date;
  /** A retryable failure on this attempt or later is dead-lettered instead. */
  maxAttempts: number;
  /** Delay before a parked message is tried again. */
  backoff: Backoff;
  /** Outbox rows already published, deleted in this transaction (outbox.ts publishRows). */
  published?: string[];
}

/** Raised inside the transaction when another writer moved a key's state first. */
export class StaleStateError extends RetryableError {
  constructor(keys: string[]) {
    super(ErrorCodes.staleState, `state of ${keys.join(', ')} was changed by another writer`);
    this.name = 'StaleStateError';
  }
}

export async function runBatch(
  knex: Knex,
  items: readonly Prepared[],
  opts: BatchOptions,
): Promise<BatchResult> {
  const taken: StateCache = new Map();
  if (opts.cache !== undefined && opts.cache.size > 0) {
    for (const p of items) {
      if (p.key === undefined) continue;
      const k = pairKey(p.kind, p.key);
      const c = opts.cache.get(k);
      if (c === undefined) continue;
      opts.cache.delete(k);
      taken.set(k, c);
    }
  }
  const { result, written } = await knex.transaction(async (trx) => {
    const outcomes: (Outcome | undefined)[] = items.map(() => undefined);

    // Everything the batch reads, in one statement (batch-sql.ts): the inbox (anything
    // handled before has no effect; a message from its parking lot is in the inbox as parked,
    // as expected), the timers whose firing counts (not cancelled or reset), the state of every
    // key with work to do (locked for this transaction), and the keys with a parking lot (new
    // messages of such a key wait at the end of its lot).
    const ids: [string, string][] = items
      .filter((p) => p.parkedId === undefined)
      .map((p) => [p.kind, p.msgId]);
    const timerIds = items.flatMap((p) =>
      isTimer(p) ? [(p.decoded as { message: { timerId: string } }).message.timerId] : [],
    );
    const keys = new Map<string, [ActorKind, string]>();
    const live = new Map<string, [ActorKind, string]>();
    for (const p of items) {
      if (p.key === undefined || !p.decoded.ok) continue;
      const pair: [ActorKind, string] = [p.kind, p.key];
      keys.set(pairKey(p.kind, p.key), pair);
      if (p.parkedId === undefined) live.set(pairKey(p.kind, p.key), pair);
    }
    const liveKeys = [...live.values()];
    const read = await readBatch(trx, {
      ids,
      timers: timerIds,
      keys: [...keys.values()],
      live: liveKeys,
      // A key only undecodable messages named is not read; its entry is simply dropped.
      cached: [...taken].flatMap(([k, c]): [string, string, number][] => {
        const pair = keys.get(k);
        return pair === undefined ? [] : [[pair[0], pair[1], c.version]];
      }),
    });
    const firstOfId = new Set<string>();
    items.forEach((p, i) => {
      if (p.parkedId !== undefined) return;
      const id = pairKey(p.kind, p.msgId);
      if (read.seen.has(id) || firstOfId.has(id)) outcomes[i] = { kind: 'duplicate' };
      firstOfId.add(id);
    });
    const working = new Map<string, Working>();
    for (const [k, r] of read.states) {
      const state = read.unchanged.has(k) ? taken.get(k)!.state : r.state;
      working.set(k, { version: r.version, state, changed: false });
    }

    // 4. Handlers, per key in stream order, in memory (apply.ts).
    const { parkInserts, parkUpdates, unparked, outbox, timerOps, records, firedTimers } =
      applyHandlers(
        items,
        outcomes,
        { working, keys, parked: read.parked, liveTimers: read.liveTimers },
        opts,
      );

    // 5. Writes, in one statement but for the actor's own records and the parking lots. A
    // stale writer's state is not written, and then the whole batch rolls back.
    const states: StateWrite[] = [];
    for (const [k, w] of working) {
      if (!w.changed) continue;
      const [actor, key] = keys.get(k)!;
      states.push({ actor, key, version: w.version + 1, state: w.state });
    }
    const timerCancels: WriteInput['timerCancels'] = [];
    const timerSets: TimerSet[] = [];
    for (const { kind, key, op, trace } of timerOps.values()) {
      if ('cancel' in op) timerCancels.push({ actor: kind, key, name: op.name });
      else {
        timerSets.push({
          actor: kind,
          key,
          name: op.name,
          at: op.at,
          data: op.data,
          trace: Object.keys(trace).length === 0 ? null : trace,
        });
      }
    }
    const inbox = items.flatMap((p, i) => {
      const o = outcomes[i]!;
      if (o.kind === 'duplicate' || o.kind === 'retry' || p.parkedId !== undefined) return [];
      // No ON CONFLICT: a concurrent writer of the same message must make this batch fail.
      return [{ actor: p.kind, msgId: p.msgId, outcome: o.kind }];
    });
    const written = await writeBatch(trx, {
      now: opts.now,
      states,
      inbox,
      // A fired timer its handler set again is replaced by the upsert, not deleted.
      firedTimers: [...firedTimers].flatMap(([id, slot]) => {
        const op = timerOps.get(slot)?.op;
        return op !== undefined && !('cancel' in op) ? [] : [id];
      }),
      timerCancels,
      timerSets,
      outbox,
      published: opts.published ?? [],
    });
    if (written.written.size !== states.length) {
      throw new StaleStateError(
        states
          .filter((r) => !written.written.has(pairKey(r.actor, r.key)))
          .map((r) => `${r.actor}/${r.key}`),
      );
    }
    for (const [kind, list] of records) {
      const persist = opts.actors.get(kind)?.persist;
      if (persist === undefined) {
        throw new TerminalError(
          ErrorCodes.handlerBug,
          `${kind} returned records but has no persist`,
        );
      }
      await persist(trx, list);
    }
    for (const [i, p] of items.entries()) {
      const o = outcomes[i]!;
      if (p.parkedId === undefined || o.kind === 'parked') continue;
      await trx('rt_inbox')
        .where({ actor: p.kind, msg_id: p.msgId })
        .update({ outcome: o.kind, handled_at: opts.now });
    }
    if (unparked.length > 0) {
      const gone = await trx('rt_parked').whereIn('id', unparked).delete();
      // A parked message handled twice at once (two drains racing) must not commit twice.
      if (gone !== unparked.length) throw new StaleStateError(['a parked message']);
    }
    if (parkInserts.length > 0) await trx('rt_parked').insert(parkInserts);
    for (const u of parkUpdates) {
      await trx('rt_parked')
        .where({ id: u.id })
        .update({
          attempts: u.attempts,
          next_attempt_at: u.nextAt,
          last_error: `${u.error.code}: ${u.error.message}`.slice(0, 1000),
        });
    }
    const publish: PublishRow[] = outbox.map((o, i) => ({
      id: written.outboxIds[i]!,
      subject: o.subject,
      headers: o.headers,
      data: o.data,
    }));
    return { result: { outcomes: outcomes.map((o) => o!), publish }, written: states };
  });
  // Committed: what an in-place actor wrote is where its next batch starts.
  if (opts.cache !== undefined) {
    for (const st of written) {
      if (opts.actors.get(st.actor as ActorKind)?.mutatesState !== true) continue;
      opts.cache.set(pairKey(st.actor, st.key), { version: st.version, state: st.state });
    }
  }
  return result;
}

/** The command a fired timer is delivered on. */
export function timerSubject(kind: ActorKind, key: string): string {
  return cmdSubject(kind, key, TIMER_VERB);
}
