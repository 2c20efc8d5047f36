/**
 * Durable timers. A due timer is marked emitted and its firing written to the outbox in one
 * transaction, addressed to its actor's command subject; the actor's own transaction deletes
 * the timer when it handles the firing. One row per (actor, key, name) means a timer that
 * fell due many times during an outage fires once, late, not in a flood.
 */
import type { Knex } from 'knex';
import type { ActorKind } from '../../contracts/index.ts';
import { HeaderNames, TimerFired } from '../../contracts/index.ts';
import type { PublishRow } from './store.ts';
import { timerSubject } from './store.ts';

interface DueTimer {
  id: string | number;
  actor: ActorKind;
  key: string;
  name: string;
  /** The driver returns timestamps as text. */
  fire_at: string | Date;
  data: unknown;
  /** traceparent / tracestate of the message that set it (tracing.ts links the firing). */
  trace: Record<string, string> | null;
}

export async function sweepTimers(
  knex: Knex,
  opts: { kinds: readonly ActorKind[]; now: Date; limit: number },
): Promise<PublishRow[]> {
  if (opts.kinds.length === 0) return [];
  return knex.transaction(async (trx) => {
    const due = await trx('rt_timer')
      .update({ emitted_at: opts.now })
      .whereIn(
        'id',
        trx('rt_timer')
          .select('id')
          .whereNull('emitted_at')
          .where('fire_at', '<=', opts.now)
          .whereIn('actor', opts.kinds)
          .orderBy('fire_at')
          .limit(opts.limit)
          .forUpdate()
          .skipLocked(),
      )
      .returning<DueTimer[]>(['id', 'actor', 'key', 'name', 'fire_at', 'data', 'trace']);
    if (due.length === 0) return [];
    const rows = due.map((t) => {
      const data = TimerFired.encode({
        timerId: String(t.id),
        name: t.name,
        dueAt: new Date(t.fire_at).toISOString(),
        firedAt: opts.now.toISOString(),
        ...(t.data === null || t.data === undefined ? {} : { data: t.data as never }),
      });
      const headers = { ...(t.trace ?? {}), [HeaderNames.type]: TimerFired.type };
      return {
        subject: timerSubject(t.actor, t.key),
        msg_type: TimerFired.type,
        headers: JSON.stringify(headers),
        headerMap: headers,
        data: Buffer.from(data),
      };
    });
    const ids = await trx('rt_outbox')
      .insert(rows.map(({ headerMap: _h, ...r }) => r))
      .returning<{ id: string | number }[]>(['id']);
    return ids.map((r, i) => ({
      id: String(r.id),
      subject: rows[i]!.subject,
      headers: rows[i]!.headerMap,
      data: rows[i]!.data,
    }));
  });
}
