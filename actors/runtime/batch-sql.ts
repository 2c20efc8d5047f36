/**
 * A batch's reads and writes as two statements (store.ts runs them inside its transaction):
 * a round trip to PostgreSQL costs more than the rows it carries, so a batch of 32 session
 * starts is BEGIN, one read, one write and COMMIT, not one statement per timer and table.
 * Each statement takes its rows as one JSON document (`jsonb_to_recordset`); the write takes
 * the states apart, as `json`, so that a large state is stored as the text it came as and
 * never parsed into jsonb (db.ts, StateTextMigration).
 */
import type { Knex } from 'knex';
import { pairKey } from './rows.ts';

export interface ReadInput {
  /** Messages to look up in the inbox: [actor, msg_id]. */
  ids: [string, string][];
  /** Timer ids whose firing is being delivered. */
  timers: string[];
  /** Keys whose state is read and locked for this transaction: [actor, key]. */
  keys: [string, string][];
  /** Keys with new (not parked) messages, checked for a parking lot. */
  live: [string, string][];
  /** Keys whose state the caller holds at this version: not sent back if still current. */
  cached?: [string, string, number][];
}

export interface ReadResult {
  /** pairKey(actor, msg_id) of the messages handled before. */
  seen: Set<string>;
  /** Timer ids that still exist and were emitted (not cancelled or reset since). */
  liveTimers: Set<string>;
  /** By pairKey(actor, key); `state` is undefined for a key in `unchanged`. */
  states: Map<string, { version: number; state: unknown }>;
  /** pairKey(actor, key) of the `cached` keys still at the caller's version. */
  unchanged: Set<string>;
  /** pairKey(actor, key) of keys with a parking lot. */
  parked: Set<string>;
}

/*
 * The state rows are locked first (in key order, so two batches cannot deadlock), then the
 * live timers. Every branch reads the snapshot taken when the statement began; a locked row
 * that another transaction changed meanwhile is read as committed. So a drain of a parking
 * lot that commits while this waits for its key's lock is seen as not finished: the new
 * message then waits at the end of the lot, a little later but in order.
 *
 * The keys and timers to lock are taken out of the parameter first (`ks`, `ti`, materialized).
 * A row locked FOR UPDATE carries a copy of every other row its join read, for PostgreSQL's
 * re-check of a row changed meanwhile: joined to `q` directly, each locked row carried the
 * whole parameter, so a batch of n messages sorted n copies of an n-sized document (7 MB,
 * spilled to disk, for 203 keys late in a replayed day; 18-90 ms against 3 ms this way).
 */
const READ_SQL = `
with q as (select ?::jsonb as j),
ks as materialized (
  select x.a, x.k from q, jsonb_to_recordset(q.j->'keys') as x(a text, k text)),
ti as materialized (
  select x::bigint as id from q, jsonb_array_elements_text(q.j->'timers') as x),
st as (
  select s.actor, s.key, s.version, s.state from rt_state s
  where (s.actor, s.key) in (select ks.a, ks.k from ks)
  order by s.actor, s.key
  for update of s),
tm as (
  select t.id from rt_timer t
  where t.id in (select ti.id from ti)
    and t.emitted_at is not null
  order by t.id
  for update of t)
select case when c.v = st.version then 'c' else 's' end as t, st.actor as a, st.key as b,
  st.version as v, case when c.v = st.version then null else st.state end as s
  from st left join (
    select x.a, x.k, x.v from q, jsonb_to_recordset(q.j->'cached') as x(a text, k text, v integer)
  ) c on c.a = st.actor and c.k = st.key
union all
select 'i', i.actor, i.msg_id, null, null from rt_inbox i
  where (i.actor, i.msg_id) in (select x.a, x.m from q, jsonb_to_recordset(q.j->'ids') as x(a text, m text))
union all
select 't', null, tm.id::text, null, null from tm
union all
select 'p', l.actor, l.key, null::integer, null::json from (
  select distinct p.actor, p.key from rt_parked p
  where (p.actor, p.key) in (select x.a, x.k from q, jsonb_to_recordset(q.j->'live') as x(a text, k text))) l`;

interface ReadRow {
  t: 's' | 'c' | 'i' | 't' | 'p';
  a: string | null;
  b: string;
  v: number | null;
  s: unknown;
}

/** A statement and its bindings, as knex's `raw` takes them. */
export interface Statement {
  sql: string;
  bindings: readonly (string | Date)[];
}

/** What node-postgres's client answers a query with (the part used here). */
interface PgConnection {
  query<R>(q: { name: string; text: string; values: readonly unknown[] }): Promise<{ rows: R[] }>;
}

/** knex's `?` placeholders as PostgreSQL's `$1`, `$2`… (the statements use `?` for nothing else). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/**
 * Runs one of the two statements as a named prepared statement on the transaction's own
 * connection: PostgreSQL plans each once per connection instead of on every batch (planning
 * took longer than executing them), and knex's query building is skipped. knex still owns the
 * transaction (BEGIN, COMMIT, ROLLBACK) and the connection.
 */
async function runPrepared<R>(
  trx: Knex.Transaction,
  name: string,
  st: Statement,
  text: string,
): Promise<R[]> {
  const client = trx.client as unknown as { acquireConnection?: () => Promise<unknown> };
  const conn = await client.acquireConnection?.();
  if (typeof (conn as Partial<PgConnection> | undefined)?.query !== 'function') {
    // Not node-postgres underneath (another driver, a knex that changed): plain knex.
    return (await trx.raw<{ rows: R[] }>(st.sql, st.bindings)).rows;
  }
  return (await (conn as PgConnection).query<R>({ name, text, values: st.bindings })).rows;
}

const READ_TEXT = numbered(READ_SQL);

/** The read statement for `input` (exported so that tests can EXPLAIN it). */
export function readStatement(input: ReadInput): Statement {
  const j = {
    ids: input.ids.map(([a, m]) => ({ a, m })),
    timers: input.timers,
    keys: input.keys.map(([a, k]) => ({ a, k })),
    live: input.live.map(([a, k]) => ({ a, k })),
    cached: (input.cached ?? []).map(([a, k, v]) => ({ a, k, v })),
  };
  return { sql: READ_SQL, bindings: [JSON.stringify(j)] };
}

export async function readBatch(trx: Knex.Transaction, input: ReadInput): Promise<ReadResult> {
  const out: ReadResult = {
    seen: new Set(),
    liveTimers: new Set(),
    states: new Map(),
    unchanged: new Set(),
    parked: new Set(),
  };
  if (
    input.ids.length === 0 &&
    input.timers.length === 0 &&
    input.keys.length === 0 &&
    input.live.length === 0
  )
    return out;
  const rows = await runPrepared<ReadRow>(trx, 'rt_batch_read', readStatement(input), READ_TEXT);
  for (const row of rows) {
    if (row.t === 's') {
      out.states.set(pairKey(row.a!, row.b), { version: row.v!, state: row.s });
    } else if (row.t === 'c') {
      out.states.set(pairKey(row.a!, row.b), { version: row.v!, state: undefined });
      out.unchanged.add(pairKey(row.a!, row.b));
    } else if (row.t === 'i') out.seen.add(pairKey(row.a!, row.b));
    else if (row.t === 't') out.liveTimers.add(row.b);
    else out.parked.add(pairKey(row.a!, row.b));
  }
  return out;
}

export interface StateWrite {
  actor: string;
  key: string;
  /** The version written: the one read plus one (or 1 for a new key). */
  version: number;
  state: unknown;
}

export interface TimerSet {
  actor: string;
  key: string;
  name: string;
  at: Date;
  data: unknown;
  trace: Record<string, string> | null;
}

export interface OutboxWrite {
  subject: string;
  msg_type: string;
  headers: Record<string, string>;
  data: Uint8Array;
}

export interface WriteInput {
  now: Date;
  states: StateWrite[];
  inbox: { actor: string; msgId: string; outcome: string }[];
  /** Timer ids to delete (fired and handled). None may also be in `timerSets`' keys. */
  firedTimers: string[];
  timerCancels: { actor: string; key: string; name: string }[];
  timerSets: TimerSet[];
  outbox: OutboxWrite[];
  /** Outbox rows published since (their JetStream acks received), deleted here. */
  published: string[];
}

export interface WriteResult {
  /** pairKey(actor, key) of the states written (a stale version is not). */
  written: Set<string>;
  /** The outbox rows' ids, in the order of `outbox`. */
  outboxIds: string[];
}

/*
 * Data-modifying CTEs run once each, whether or not the final select reads them, and must
 * not touch one row twice: the timer delete and the timer upsert get disjoint rows (the
 * caller leaves out of `firedTimers` a timer its batch sets again; the upsert replaces it).
 * Outbox ids are drawn before the insert so that they come back in the order given.
 * Every table is reached through an index: each delete takes one array of ids (`= any`, an
 * index scan whatever the planner guesses of the list's length). An OR of two IN lists made
 * it read the whole of rt_timer on every batch, and an IN list over the outer `q` the whole of
 * rt_outbox; a plain IN list became a hash join over all of rt_outbox, which made
 * bench:allocation half as fast.
 */
const WRITE_SQL = `
with q as (select ?::jsonb as j, ?::timestamptz as now),
s as (
  insert into rt_state as r (actor, key, version, state, updated_at)
  select x.a, x.k, x.v, x.s, q.now
    from q, json_to_recordset(?::json) as x(a text, k text, v integer, s json)
  on conflict (actor, key) do update
    set version = excluded.version, state = excluded.state, updated_at = excluded.updated_at
    where r.version = excluded.version - 1
  returning r.actor, r.key),
i as (
  insert into rt_inbox (actor, msg_id, outcome, handled_at)
  select x.a, x.m, x.o, q.now from q, jsonb_to_recordset(q.j->'inbox') as x(a text, m text, o text)),
td as (
  delete from rt_timer t
  where t.id = any(array(
    select x::bigint from q, jsonb_array_elements_text(q.j->'fired') as x
    union all
    select c.id from q, jsonb_to_recordset(q.j->'cancel') as x(a text, k text, n text)
      join rt_timer c on c.actor = x.a and c.key = x.k and c.name = x.n))),
ts as (
  insert into rt_timer as t (actor, key, name, fire_at, data, emitted_at, trace)
  select x.a, x.k, x.n, x.at, x.d, null, x.tr
    from q, jsonb_to_recordset(q.j->'set') as x(a text, k text, n text, at timestamptz, d jsonb, tr jsonb)
  on conflict (actor, key, name) do update
    set id = nextval('rt_timer_id_seq'), fire_at = excluded.fire_at, data = excluded.data,
        emitted_at = null, trace = excluded.trace),
ob as (
  select nextval('rt_outbox_id_seq') as id, x.ord, x.v
    from q, jsonb_array_elements(q.j->'outbox') with ordinality as x(v, ord)),
o as (
  insert into rt_outbox (id, subject, msg_type, headers, data)
  select ob.id, ob.v->>'s', ob.v->>'t', ob.v->'h', decode(ob.v->>'d', 'base64') from ob),
od as (
  delete from rt_outbox d
  where d.id = any(array(select x::bigint from q, jsonb_array_elements_text(q.j->'published') as x)))
select
  (select coalesce(json_agg(json_build_array(s.actor, s.key)), '[]'::json) from s) as written,
  (select coalesce(json_agg(ob.id::text order by ob.ord), '[]'::json) from ob) as ids`;

const WRITE_TEXT = numbered(WRITE_SQL);

/** The write statement for `w` (exported so that tests can EXPLAIN it). */
export function writeStatement(w: WriteInput): Statement {
  const j = {
    inbox: w.inbox.map((i) => ({ a: i.actor, m: i.msgId, o: i.outcome })),
    fired: w.firedTimers,
    cancel: w.timerCancels.map((c) => ({ a: c.actor, k: c.key, n: c.name })),
    set: w.timerSets.map((t) => ({
      a: t.actor,
      k: t.key,
      n: t.name,
      at: t.at,
      d: t.data ?? null,
      tr: t.trace,
    })),
    outbox: w.outbox.map((o) => ({
      s: o.subject,
      t: o.msg_type,
      h: o.headers,
      d: Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength).toString('base64'),
    })),
    published: w.published,
  };
  const states = w.states.map((s) => ({ a: s.actor, k: s.key, v: s.version, s: s.state }));
  return { sql: WRITE_SQL, bindings: [JSON.stringify(j), w.now, JSON.stringify(states)] };
}

export async function writeBatch(trx: Knex.Transaction, w: WriteInput): Promise<WriteResult> {
  if (
    w.states.length === 0 &&
    w.inbox.length === 0 &&
    w.firedTimers.length === 0 &&
    w.timerCancels.length === 0 &&
    w.timerSets.length === 0 &&
    w.outbox.length === 0 &&
    w.published.length === 0
  )
    return { written: new Set(), outboxIds: [] };
  const rows = await runPrepared<{ written: [string, string][]; ids: string[] }>(
    trx,
    'rt_batch_write',
    writeStatement(w),
    WRITE_TEXT,
  );
  const row = rows[0]!;
  return {
    written: new Set(row.written.map(([a, k]) => pairKey(a, k))),
    outboxIds: row.ids,
  };
}
