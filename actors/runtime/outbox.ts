/**
 * Publishing the outbox. Each row goes to JetStream with `ob-<row id>` as Nats-Msg-Id, so a
 * row published twice (a crash between publish and delete, a sweeper racing a batch) is
 * stored once; consumers' inboxes catch repeats beyond the de-duplication window.
 */
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { HeaderNames, failureLog, type Publisher } from '../../contracts/index.ts';
import type { PublishRow } from './store.ts';

export function outboxMsgId(id: string): string {
  return `ob-${id}`;
}

/**
 * Publishes rows (all in flight at once), then deletes the ones JetStream acknowledged, or,
 * with `acked`, hands their ids over to be deleted later (worker.ts deletes them in its next
 * batch's write, saving a round trip).
 */
export async function publishRows(
  js: Publisher,
  knex: Knex,
  rows: readonly PublishRow[],
  acked?: (ids: string[]) => void,
): Promise<{ published: number; failed: number }> {
  if (rows.length === 0) return { published: 0, failed: 0 };
  const results = await Promise.allSettled(
    rows.map((r) => {
      const h = natsHeaders();
      for (const [k, v] of Object.entries(r.headers)) {
        if (k !== HeaderNames.msgId) h.set(k, v);
      }
      return js.publish(r.subject, r.data, { msgID: outboxMsgId(r.id), headers: h });
    }),
  );
  const done = rows.filter((_, i) => results[i]!.status === 'fulfilled').map((r) => r.id);
  if (acked !== undefined) acked(done);
  else if (done.length > 0) await knex('rt_outbox').whereIn('id', done).delete();
  return { published: done.length, failed: rows.length - done.length };
}

/** How long published rows wait for a batch to delete them before a statement does. */
const ACKED_DELETE_DELAY_MS = 100;

/**
 * Outbox rows JetStream acknowledged, waiting to be deleted: a batch takes them into its
 * write (commit.ts) and gives them back if it does not commit; rows no batch took within
 * ACKED_DELETE_DELAY_MS are deleted by a statement of their own, long before the sweeper's
 * grace would republish them.
 */
export function createAckedRows(
  knex: Knex,
  log: Logger,
): {
  add(ids: string[]): void;
  take(): string[];
  restore(ids: string[]): void;
  /** Deletes what is left; no more timers after this. */
  close(): Promise<void>;
} {
  const ids: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  // Rows not deleted are tried again: a run of failures is logged once, not every round.
  const failures = failureLog(log, 'deleting published outbox rows');
  async function flush(): Promise<void> {
    const some = ids.splice(0);
    if (some.length === 0) return;
    try {
      await knex('rt_outbox').whereIn('id', some).delete();
      failures.ok();
    } catch (err) {
      ids.push(...some);
      failures.failed(err);
    }
  }
  function schedule(): void {
    if (ids.length === 0 || closed) return;
    timer ??= setTimeout(() => {
      void flush().then(() => {
        timer = undefined;
        schedule();
      });
    }, ACKED_DELETE_DELAY_MS);
  }
  return {
    add(more) {
      ids.push(...more);
      schedule();
    },
    take: () => ids.splice(0),
    restore(back) {
      ids.unshift(...back);
      schedule();
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      await flush();
    },
  };
}

/**
 * Republishes rows a crashed or slow publisher left behind. Rows younger than `graceMs` are
 * left to the batch that wrote them. SKIP LOCKED lets several workers sweep side by side.
 */
export async function sweepOutbox(
  js: Publisher,
  knex: Knex,
  log: Logger,
  opts: { graceMs: number; limit: number },
): Promise<number> {
  return knex.transaction(async (trx) => {
    const rows = (await trx('rt_outbox')
      .select('id', 'subject', 'headers', 'data')
      .where('created_at', '<', trx.raw(`now() - make_interval(secs => ?)`, [opts.graceMs / 1000]))
      .orderBy('id')
      .limit(opts.limit)
      .forUpdate()
      .skipLocked()) as {
      id: string | number;
      subject: string;
      headers: Record<string, string>;
      data: Buffer;
    }[];
    if (rows.length === 0) return 0;
    const r = await publishRows(
      js,
      trx,
      rows.map((x) => ({ id: String(x.id), subject: x.subject, headers: x.headers, data: x.data })),
    );
    log.info({ republished: r.published, failed: r.failed }, 'outbox sweep republished rows');
    return r.published;
  });
}

/**
 * Forgets inbox entries older than `cutoff`, a bounded batch at a time. Safe only because the
 * cutoff is older than anything the command streams still hold (COMMAND_RETENTION_MS).
 */
export async function pruneInbox(knex: Knex, cutoff: Date, limit: number): Promise<number> {
  return knex('rt_inbox')
    .whereIn(
      ['actor', 'msg_id'],
      knex('rt_inbox').select('actor', 'msg_id').where('handled_at', '<', cutoff).limit(limit),
    )
    .delete();
}
