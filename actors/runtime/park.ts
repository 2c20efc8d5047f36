/**
 * Draining parking lots. Each key's lot holds the message that failed with a retryable
 * error and, in order, every later message of that key. The head of each lot is retried
 * when due, through the same batch transaction as live messages; a success moves the lot
 * on at once (its next message is due immediately), a failure backs off, and the attempt
 * limit dead-letters the head. Lots of different keys drain concurrently; SKIP LOCKED lets
 * several workers share the work without handling one head twice.
 */
import type { Knex } from 'knex';
import { ErrorCodes, TerminalError, type ActorKind } from '../../contracts/index.ts';
import type { ActorDefinition } from './actor.ts';
import type { Prepared } from './rows.ts';
import { backoffDelay } from './settle.ts';
import { runBatch, type BatchOptions, type BatchResult } from './store.ts';

interface ParkedRow {
  id: string | number;
  actor: ActorKind;
  key: string;
  msg_id: string;
  subject: string;
  stream: string;
  stream_seq: string | number;
  headers: Record<string, string>;
  data: Buffer;
  attempts: number;
}

function toPrepared(r: ParkedRow, def: ActorDefinition | undefined): Prepared {
  const base = {
    kind: r.actor,
    key: r.key,
    msgId: r.msg_id,
    subject: r.subject,
    stream: r.stream,
    streamSeq: Number(r.stream_seq),
    redeliveries: r.attempts,
    headers: r.headers,
    data: new Uint8Array(r.data),
    parkedId: String(r.id),
  };
  if (def === undefined) {
    const error = new TerminalError(ErrorCodes.unknownType, `no ${r.actor} actor in this worker`);
    return { ...base, decoded: { ok: false, error } };
  }
  try {
    return { ...base, decoded: { ok: true, message: def.decode(base.data) } };
  } catch (err) {
    const error =
      err instanceof TerminalError
        ? err
        : new TerminalError(ErrorCodes.invalidPayload, String(err), err);
    return { ...base, decoded: { ok: false, error } };
  }
}

/**
 * One round: the due heads of up to `limit` lots, each in its own transaction (a failing
 * head must not roll back another key's progress). Returns what each transaction produced.
 */
export async function drainParked(
  knex: Knex,
  opts: BatchOptions & { kinds: readonly ActorKind[]; limit: number },
): Promise<{ prepared: Prepared; result: BatchResult }[]> {
  if (opts.kinds.length === 0) return [];
  const heads = (
    await knex('rt_parked as p')
      .select<{ id: string | number }[]>('p.id')
      .whereIn('p.actor', [...opts.kinds])
      .where('p.next_attempt_at', '<=', opts.now)
      .whereRaw(
        'p.id = (select min(q.id) from rt_parked q where q.actor = p.actor and q.key = p.key)',
      )
      .orderBy('p.next_attempt_at')
      .limit(opts.limit)
  ).map((r) => String(r.id));
  const out: { prepared: Prepared; result: BatchResult }[] = [];
  for (const id of heads) {
    const rows = await knex('rt_parked').select<ParkedRow[]>('*').where({ id });
    const row = rows[0];
    if (row === undefined) continue; // another worker drained it meanwhile
    const prepared = toPrepared(row, opts.actors.get(row.actor));
    try {
      // runBatch deletes the row only if it still exists, so two drains cannot both commit.
      out.push({ prepared, result: await runBatch(knex, [prepared], opts) });
    } catch (err) {
      out.push(await transactionFailed(knex, row, prepared, err, opts));
    }
  }
  return out;
}

/** The head's own transaction failed (not its handler): count it as an attempt. */
async function transactionFailed(
  knex: Knex,
  row: ParkedRow,
  prepared: Prepared,
  err: unknown,
  opts: BatchOptions,
): Promise<{ prepared: Prepared; result: BatchResult }> {
  const reason = err instanceof Error ? err.message : String(err);
  const attempts = row.attempts + 1;
  if (attempts >= opts.maxAttempts) {
    const dead: Prepared = {
      ...prepared,
      decoded: {
        ok: false,
        error: new TerminalError(
          ErrorCodes.attemptsExhausted,
          `gave up after ${attempts} attempts: ${reason}`,
          err,
        ),
      },
    };
    return { prepared: dead, result: await runBatch(knex, [dead], opts) };
  }
  const next = new Date(opts.now.getTime() + backoffDelay(attempts - 1, opts.backoff));
  await knex('rt_parked')
    .where({ id: row.id })
    .update({ attempts, next_attempt_at: next, last_error: reason.slice(0, 1000) });
  const error = { code: ErrorCodes.unavailable, message: reason, retryable: true };
  return { prepared, result: { outcomes: [{ kind: 'parked', error }], publish: [] } };
}
