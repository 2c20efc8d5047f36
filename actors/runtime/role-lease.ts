/**
 * A role's lease kept in PostgreSQL (`rt_lease`, the table partition ownership uses; see
 * ownership.ts), for roles a worker plays one process at a time (the Azure effects runner of a
 * region; contracts/leased-role.ts runs them). Compare-and-set lives in PostgreSQL here
 * (STACK.md: JetStream's expected-last-subject-sequence can race on replicated streams before
 * nats-server 2.9.21), and expiry is PostgreSQL's own `now()`, so the workers' clocks do not
 * matter.
 *
 * The row's owner is the holder's name (host and pid, for operators:
 * `select * from rt_lease where name like 'role.%'`) plus a random suffix: a process restarted
 * under the same name and pid is not the one that held it, and waits for it like any other.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Lease } from '../../contracts/index.ts';

export function roleLeaseName(role: string): string {
  return `role.${role}`;
}

export function createPgLease(opts: {
  knex: Knex;
  /** The row's name, e.g. `role.azure-effects.centralindia`. */
  name: string;
  holder: string;
  ttlMs: number;
  /** A statement that takes longer fails (the role's fence then decides); default 5 s. */
  statementTimeoutMs?: number;
}): Lease {
  const owner = `${opts.holder}#${randomUUID().slice(0, 8)}`;
  const { knex, name, ttlMs } = opts;
  const timeout = opts.statementTimeoutMs ?? 5_000;
  let held = false;
  return {
    ensure: () => Promise.resolve(),
    async acquire() {
      // Whose it was, read in the same statement: a row of another owner, expired or given
      // back, is a takeover.
      const r = await knex
        .raw<{ rows: { before: string | null }[] }>(
          `with before as (select owner from rt_lease where name = ?)
         insert into rt_lease (name, owner, expires_at)
           values (?, ?, now() + (? * interval '1 millisecond'))
         on conflict (name) do update
           set owner = excluded.owner, expires_at = excluded.expires_at
           where rt_lease.owner = excluded.owner or rt_lease.expires_at < now()
         returning (select owner from before) as before`,
          [name, name, owner, ttlMs],
        )
        .timeout(timeout, { cancel: true });
      if (r.rows.length > 0) {
        held = true;
        const before = r.rows[0]!.before;
        return { acquired: true, takenOver: before !== null && before !== owner };
      }
      const other = await knex('rt_lease')
        .first<{ owner: string } | undefined>('owner')
        .where({ name })
        .timeout(timeout, { cancel: true });
      return { acquired: false, heldBy: other?.owner.replace(/#[0-9a-f]{8}$/, '') ?? '?' };
    },
    async renew() {
      if (!held) return false;
      const n = await knex('rt_lease')
        .where({ name, owner })
        .andWhere('expires_at', '>', knex.raw('now()'))
        .update({ expires_at: knex.raw(`now() + (? * interval '1 millisecond')`, [ttlMs]) })
        .timeout(timeout, { cancel: true });
      held = n > 0;
      return held;
    },
    async release() {
      if (!held) return;
      held = false;
      // Expired now rather than deleted: the next holder sees it took over from someone.
      await knex('rt_lease')
        .where({ name, owner })
        .update({ expires_at: knex.raw(`now() - interval '1 millisecond'`) });
    },
    close: () => undefined,
  };
}
