/**
 * Vacuum of the tables the runtime churns. Every heartbeat moves its session's timer (a new
 * row version, and a new entry in the due-timer index), every batch inserts and deletes outbox
 * rows and rewrites its keys' states: over a replayed day `rt_timer` held 3,000 live rows and
 * 480,000 dead ones, and the timer sweep walked the dead index entries on every poll (200 ms
 * each). Autovacuum would clear them, but a PostgreSQL may run without it (this project's CI
 * does) or behind it (a minute between its rounds, a fifth of a table dead before it acts). So
 * a worker checks the statistics itself and vacuums a table once its dead rows pass a
 * threshold; `SKIP_LOCKED` lets a table another worker (or autovacuum) is already vacuuming go.
 */
import type { Knex } from 'knex';

export interface VacuumPolicy {
  /** Dead rows below this never trigger a vacuum, whatever the table's size. */
  minDead: number;
  /** Dead rows as a share of live rows from which a table is vacuumed. */
  deadRatio: number;
}

export const DEFAULT_VACUUM_POLICY: VacuumPolicy = { minDead: 2_000, deadRatio: 0.2 };

export interface Vacuumed {
  table: string;
  /** Dead rows the statistics counted before the vacuum. */
  dead: number;
  ms: number;
}

interface TableStats {
  relname: string;
  n_live_tup: string | number;
  n_dead_tup: string | number;
}

/** Tables of the connection's schema whose dead rows passed the policy, most dead first. */
export async function churnedTables(
  knex: Knex,
  policy: VacuumPolicy = DEFAULT_VACUUM_POLICY,
): Promise<{ table: string; dead: number }[]> {
  const rows = await knex
    .select<TableStats[]>('relname', 'n_live_tup', 'n_dead_tup')
    .from('pg_stat_user_tables')
    .where('schemaname', knex.raw('current_schema()'))
    .orderBy('n_dead_tup', 'desc');
  return rows
    .map((r) => ({ table: r.relname, live: Number(r.n_live_tup), dead: Number(r.n_dead_tup) }))
    .filter((r) => r.dead >= policy.minDead && r.dead >= r.live * policy.deadRatio)
    .map(({ table, dead }) => ({ table, dead }));
}

/**
 * Vacuums (and analyzes: the planner's row counts go stale with the same churn) each churned
 * table, one at a time so the database is never asked for more than one at once.
 */
export async function vacuumChurned(
  knex: Knex,
  policy: VacuumPolicy = DEFAULT_VACUUM_POLICY,
): Promise<Vacuumed[]> {
  const done: Vacuumed[] = [];
  for (const { table, dead } of await churnedTables(knex, policy)) {
    const started = performance.now();
    // VACUUM cannot run inside a transaction: knex.raw outside one is a statement of its own.
    await knex.raw('vacuum (analyze, skip_locked) ??', [table]);
    done.push({ table, dead, ms: Math.round(performance.now() - started) });
  }
  return done;
}
