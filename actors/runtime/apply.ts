/**
 * The in-memory half of a batch (store.ts runBatch): every delivery's handler, per key in
 * stream order, on the states the batch read; what they emit, the timers they set, the
 * records they keep and the deliveries that wait in their key's parking lot. Nothing here
 * touches the database; the caller writes what this returns.
 */
import {
  ErrorCodes,
  HeaderNames,
  RespawnError,
  RetryableError,
  TerminalError,
  type ActorKind,
  type ErrorData,
} from '../../contracts/index.ts';
import type { ActorDefinition, HandlerContext, PersistRecord, TimerOp } from './actor.ts';
import {
  carriedHeaders,
  classify,
  deadLetter,
  emissionRow,
  isTimer,
  pairKey,
  type Outcome,
  type OutboxInsert,
  type Prepared,
} from './rows.ts';
import { backoffDelay, type Backoff } from './settle.ts';

/**
 * A key with several messages in one batch has its state checked once, after the last one.
 * If that check fails the batch is retried message by message (worker.ts), where each
 * handler's result is checked on its own and the one that broke it is dead-lettered.
 */
export class BatchStateInvalidError extends RetryableError {
  constructor(keys: string[], reason: string) {
    super(ErrorCodes.handlerBug, `state of ${keys.join(', ')} invalid after a batch: ${reason}`);
    this.name = 'BatchStateInvalidError';
  }
}

/** A key's state during the batch: as read (or initial), then as its handlers left it. */
export interface Working {
  version: number;
  state: unknown;
  changed: boolean;
}

export interface ParkInsert {
  actor: string;
  key: string;
  msg_id: string;
  subject: string;
  stream: string;
  stream_seq: number;
  headers: string;
  data: Buffer;
  attempts: number;
  next_attempt_at: Date;
  last_error: string;
  parked_at: Date;
}

function parkRow(
  p: Prepared,
  attempts: number,
  nextAt: Date,
  error: ErrorData,
  now: Date,
): ParkInsert {
  return {
    actor: p.kind,
    key: p.key ?? '',
    msg_id: p.msgId,
    subject: p.subject,
    stream: p.stream,
    stream_seq: p.streamSeq,
    headers: JSON.stringify(p.headers),
    data: Buffer.from(p.data),
    attempts,
    next_attempt_at: nextAt,
    last_error: `${error.code}: ${error.message}`.slice(0, 1000),
    parked_at: now,
  };
}

/** A fired timer's place in `timerOps`: its key and name. */
function timerSlot(sk: string, p: Prepared): string {
  return `${sk}\u0000${(p.decoded as { message: { name: string } }).message.name}`;
}

/** The trace headers a delivery's emissions carry (its span's, else its own). */
function traceOf(p: Prepared): Record<string, string> {
  const { [HeaderNames.causationId]: _cause, ...trace } = carriedHeaders(p);
  return trace;
}

export interface ApplyOptions {
  actors: ReadonlyMap<ActorKind, ActorDefinition>;
  now: Date;
  maxAttempts: number;
  backoff: Backoff;
}

/** What the batch read that the handlers need. */
export interface ApplyInput {
  /** Each key's state, by pairKey; changed in place. */
  working: Map<string, Working>;
  /** The (kind, key) of each pairKey with decodable work. */
  keys: ReadonlyMap<string, [ActorKind, string]>;
  /** Keys with a parking lot; a key whose message is parked here joins them. */
  parked: Set<string>;
  /** Timers whose firing still counts (neither cancelled nor reset). */
  liveTimers: ReadonlySet<string>;
}

export interface Applied {
  parkInserts: ParkInsert[];
  parkUpdates: { id: string; attempts: number; nextAt: Date; error: ErrorData }[];
  /** Parking-lot rows handled here, to delete. */
  unparked: string[];
  outbox: OutboxInsert[];
  /** Timer operations by slot (pairKey + NUL + name): the last one of a slot wins. */
  timerOps: Map<
    string,
    { kind: ActorKind; key: string; op: TimerOp; trace: Record<string, string> }
  >;
  records: Map<ActorKind, PersistRecord[]>;
  /** Fired timers handled here, by id, with the timer slot (`timerOps`' key) they held. */
  firedTimers: Map<string, string>;
}

/**
 * Runs the handlers of every delivery without an outcome yet, filling `outcomes` and
 * `read.working`. Throws BatchStateInvalidError when a key's state is left invalid (or
 * half-changed in place) by a batch holding several of its messages.
 */
export function applyHandlers(
  items: readonly Prepared[],
  outcomes: (Outcome | undefined)[],
  read: ApplyInput,
  opts: ApplyOptions,
): Applied {
  const working = read.working;
  const keys = read.keys;
  const parkInserts: ParkInsert[] = [];
  const parkUpdates: Applied['parkUpdates'] = [];
  const unparked: string[] = [];
  const outbox: OutboxInsert[] = [];
  const timerOps: Applied['timerOps'] = new Map();
  const records: Applied['records'] = new Map();
  const firedTimers: Applied['firedTimers'] = new Map();
  const order = items.map((_, i) => i).sort((a, b) => items[a]!.streamSeq - items[b]!.streamSeq);
  // Validating a large state after every message of a hot key costs more than the
  // handlers: keys with several messages here are validated once, at the end.
  const perKey = new Map<string, number>();
  for (const p of items) {
    if (p.key !== undefined)
      perKey.set(pairKey(p.kind, p.key), (perKey.get(pairKey(p.kind, p.key)) ?? 0) + 1);
  }
  const deferred = new Set<string>();
  for (const i of order) {
    if (outcomes[i] !== undefined) continue;
    const p = items[i]!;
    if (!p.decoded.ok || p.key === undefined) {
      const err = p.decoded.ok
        ? new TerminalError(ErrorCodes.badSubject, `no key in ${p.subject}`)
        : p.decoded.error;
      outcomes[i] = { kind: 'dead', error: err.toData() };
      outbox.push(deadLetter(p, err.toData()));
      if (p.parkedId !== undefined) unparked.push(p.parkedId);
      continue;
    }
    const sk = pairKey(p.kind, p.key);
    if (p.parkedId === undefined && read.parked.has(sk)) {
      const error: ErrorData = {
        code: ErrorCodes.unavailable,
        message: 'behind a parked message of its key',
        retryable: true,
      };
      outcomes[i] = { kind: 'parked', error };
      // Attempts 0 and due now: it is tried as soon as it becomes the head of the lot.
      parkInserts.push(parkRow(p, 0, opts.now, error, opts.now));
      continue;
    }
    let timerId: string | undefined;
    if (isTimer(p)) {
      timerId = (p.decoded.message as { timerId: string }).timerId;
      if (!read.liveTimers.has(timerId)) {
        outcomes[i] = { kind: 'stale_timer' };
        if (p.parkedId !== undefined) unparked.push(p.parkedId);
        continue;
      }
    }
    const def = opts.actors.get(p.kind);
    if (def === undefined) {
      const e = new TerminalError(ErrorCodes.unknownType, `no actor of kind ${p.kind} here`);
      outcomes[i] = { kind: 'dead', error: e.toData() };
      outbox.push(deadLetter(p, e.toData()));
      continue;
    }
    const w = working.get(sk) ?? { version: 0, state: def.initial(p.key), changed: false };
    const ctx: HandlerContext = {
      kind: p.kind,
      key: p.key,
      now: opts.now,
      msgId: p.msgId,
      subject: p.subject,
      redeliveries: p.redeliveries,
    };
    try {
      const r = def.handle(w.state, p.decoded.message, ctx);
      let next: unknown = r.state;
      // A pure handler that hands back the very state it was given changed nothing (a status
      // query, a report that moves nothing): no check, no new version, no dead row. An
      // in-place actor returns its own object either way, so it is always written.
      const same = !def.mutatesState && r.state === w.state;
      if (same) {
        // Nothing new to check: a stored state was checked when written, a change earlier in
        // this batch is checked after the key's last message (deferred).
      } else if ((perKey.get(sk) ?? 0) > 1) deferred.add(sk);
      else {
        const checked = def.state.safeParse(r.state);
        if (!checked.success) {
          throw new TerminalError(
            ErrorCodes.handlerBug,
            `handler returned an invalid state: ${checked.error.issues[0]?.message ?? 'invalid'}`,
          );
        }
        // An in-place actor keeps its own object (and what it indexed by it).
        next = def.mutatesState ? r.state : checked.data;
      }
      working.set(sk, { version: w.version, state: next, changed: w.changed || !same });
      for (const e of r.emit ?? []) outbox.push(emissionRow(p, e));
      for (const op of r.timers ?? []) {
        timerOps.set(`${sk}\u0000${op.name}`, {
          kind: p.kind,
          key: p.key,
          op,
          trace: traceOf(p),
        });
      }
      if (r.records !== undefined && r.records.length > 0) {
        const list = records.get(p.kind) ?? [];
        for (const record of r.records)
          list.push({ key: p.key, msgId: p.msgId, at: opts.now, record });
        records.set(p.kind, list);
      }
      if (timerId !== undefined) firedTimers.set(timerId, timerSlot(sk, p));
      if (p.parkedId !== undefined) unparked.push(p.parkedId);
      outcomes[i] = r.ignored === undefined ? { kind: 'ok' } : { kind: 'ok', ignored: r.ignored };
    } catch (thrown) {
      // A handler that changes its state in place may have left it half-changed: the batch
      // is retried one message at a time (commit.ts), where this message's key has no other.
      if (def.mutatesState && (perKey.get(sk) ?? 0) > 1) {
        const why = thrown instanceof Error ? thrown.message : String(thrown);
        throw new BatchStateInvalidError([sk], `its handler threw mid-batch: ${why}`);
      }
      // Handlers are pure: an exception that is not a RespawnError (a failed encode, a
      // TypeError) happens again on every retry, so it is dead-lettered, not retried.
      const err =
        thrown instanceof RespawnError
          ? thrown
          : new TerminalError(
              ErrorCodes.handlerBug,
              `handler threw: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
              thrown,
            );
      const o = classify(err, p.redeliveries, opts.maxAttempts);
      if (o.kind === 'dead') {
        outcomes[i] = o;
        outbox.push(deadLetter(p, o.error));
        if (timerId !== undefined) firedTimers.set(timerId, timerSlot(sk, p));
        if (p.parkedId !== undefined) unparked.push(p.parkedId);
      } else if (o.kind === 'retry') {
        const attempts = p.redeliveries + 1;
        const nextAt = new Date(
          opts.now.getTime() + (o.delayMs ?? backoffDelay(attempts - 1, opts.backoff)),
        );
        outcomes[i] = { kind: 'parked', error: o.error };
        if (p.parkedId === undefined)
          parkInserts.push(parkRow(p, attempts, nextAt, o.error, opts.now));
        else parkUpdates.push({ id: p.parkedId, attempts, nextAt, error: o.error });
        read.parked.add(sk);
      }
    }
  }

  for (const sk of deferred) {
    const w = working.get(sk)!;
    const [kind] = keys.get(sk)!;
    const def = opts.actors.get(kind)!;
    const checked = def.state.safeParse(w.state);
    if (!checked.success) {
      throw new BatchStateInvalidError([sk], checked.error.issues[0]?.message ?? 'invalid');
    }
    if (!def.mutatesState) w.state = checked.data;
  }
  return { parkInserts, parkUpdates, unparked, outbox, timerOps, records, firedTimers };
}
